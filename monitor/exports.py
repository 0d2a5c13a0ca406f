"""Incident exports: what a downloaded incident holds, and the audit entry saying who took it.

An export is a record of the incident as it stands (its fields, events with their boxes, notes,
notifications and audit trail) plus its media files. Taking one is audited in the same transaction
that reads the record, so the record's own trail ends with the export itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from monitor.models import AuditLog, ClipStatus, Event, Incident
from monitor.services import User, audit

EXPORT_FORMAT = "argus.incident-export/1"


@dataclass(frozen=True)
class IncidentExport:
    incident: Incident
    record: dict[str, Any]  # becomes incident-<id>.json
    files: dict[str, FieldFile]  # name in the archive -> the media file, only files that exist

    @property
    def stem(self) -> str:
        return f"incident-{self.incident.pk}"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def media_files(incident: Incident) -> dict[str, FieldFile]:
    """The clip (when ready) and the poster, under their names in the archive, if on disk."""
    candidates = {
        f"incident-{incident.pk}.mp4": incident.clip if incident.clip_status == ClipStatus.READY else None,
        f"incident-{incident.pk}-poster.jpg": incident.poster,
    }
    return {name: f for name, f in candidates.items() if f and f.name and f.storage.exists(f.name)}


def _incident_fields(incident: Incident, files: dict[str, FieldFile]) -> dict[str, Any]:
    site, rule = incident.site, incident.rule
    clip_file = next((name for name in files if name.endswith(".mp4")), None)
    return {
        "id": incident.pk,
        "url": incident.get_absolute_url(),
        "title": incident.title,
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "site": {"id": site.pk, "name": site.name, "timezone": site.timezone},
        "camera": {"id": incident.camera_id, "name": incident.camera.name},
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind} if rule else None,
        "started_at": _iso(incident.started_at),
        "last_seen_at": _iso(incident.last_seen_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "resolved_at": _iso(incident.resolved_at),
        "created_at": _iso(incident.created_at),
        "track_ids": incident.track_ids,
        "explanation": incident.explanation,
        "assignee": incident.assignee.get_username() if incident.assignee else None,
        "clip": {
            "status": incident.clip_status,
            "started_at": _iso(incident.clip_started_at),  # t = 0 of the clip; event times are wall times
            "error": incident.clip_error,
            "file": clip_file,
        },
    }


def _event(e: Event) -> dict[str, Any]:
    return {
        "id": e.pk,
        "track_id": e.track_id,
        "actor_class": e.actor_class,
        "action": e.action,
        "score": e.score,
        "segment_start": _iso(e.segment_start),
        "segment_end": _iso(e.segment_end),
        "boxes": e.boxes,  # [[t seconds from the first box, x1, y1, x2, y2], ...] normalized
    }


def _trail(incident: Incident) -> list[dict[str, Any]]:
    entries = AuditLog.objects.filter(target_type="Incident", target_id=str(incident.pk)).select_related("actor")
    return [
        {
            "at": _iso(a.at),
            "actor": a.actor.get_username() if a.actor else None,
            "action": a.action,
            "details": a.details,
        }
        for a in entries.order_by("at", "pk")
    ]


def _deliveries(incident: Incident) -> list[dict[str, Any]]:
    return [
        {
            "channel": d.channel.name,
            "kind": d.channel.kind,
            "status": d.status,
            "attempts": d.attempts,
            "delivered_at": _iso(d.delivered_at),
            "last_error": d.last_error,
        }
        for d in incident.deliveries.select_related("channel").order_by("pk")
    ]


def incident_record(incident: Incident, files: dict[str, FieldFile], exported_by: str) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(timezone.now()),
        "exported_by": exported_by,
        "files": sorted(files),
        "incident": _incident_fields(incident, files),
        "events": [_event(e) for e in incident.events.order_by("segment_start", "pk")],
        "notes": incident.notes.splitlines(),
        "deliveries": _deliveries(incident),
        "audit": _trail(incident),
    }


@transaction.atomic
def export_incident(incident_id: int, user: User) -> IncidentExport:
    """Audit the export and read what it holds, in one transaction."""
    incident = Incident.objects.select_related("site", "camera", "rule", "assignee").get(pk=incident_id)
    files = media_files(incident)
    audit(user, incident.site, "incident.export", incident, files=sorted(files))
    record = incident_record(incident, files, exported_by=user.get_username())
    return IncidentExport(incident, record, files)
