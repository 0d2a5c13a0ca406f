"""The JSON body of an `incident.opened` webhook (README, "Notifications"), also the email's context.

Standard Webhooks envelope: {"type", "timestamp", "data"}. Fields are only ever added, never renamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from monitor.models import Camera, Incident, NotificationChannel, Severity

EVENT_OPENED = "incident.opened"


class Payload(TypedDict):
    type: str
    timestamp: str
    data: dict[str, Any]


def absolute_url(path: str) -> str:
    return settings.ARGUS_PUBLIC_URL.rstrip("/") + path


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_links(incident: Incident) -> dict[str, str | None]:
    if incident.pk is None:  # a synthetic test incident has no page
        return {"incident": absolute_url("/"), "poster": None}
    poster = absolute_url(reverse("dashboard:incident-poster", args=[incident.pk])) if incident.poster else None
    return {"incident": absolute_url(incident.get_absolute_url()), "poster": poster}


def incident_payload(incident: Incident) -> Payload:
    camera, site, rule = incident.camera, incident.site, incident.rule
    data = {
        "id": incident.pk,
        "title": incident.title,
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "started_at": _iso(incident.started_at),
        "last_seen_at": _iso(incident.last_seen_at),
        "track_ids": list(incident.track_ids),
        "camera": {"id": camera.pk, "name": camera.name},
        "site": {"id": site.pk, "name": site.name, "timezone": site.timezone},
        "rule": {"id": rule.pk, "name": rule.name} if rule else None,
        "explanation": incident.explanation,
        "links": incident_links(incident),
        "test": incident.pk is None,  # sent with "Send test"; receivers should not page anyone
    }
    return {"type": EVENT_OPENED, "timestamp": _iso(incident.created_at or timezone.now()) or "", "data": data}


def synthetic_incident(channel: NotificationChannel) -> Incident:
    """An unsaved incident for "send test": real site, a made-up camera; never written anywhere."""
    now = timezone.now()
    camera = Camera(site=channel.site, name="Test camera")
    return Incident(
        site=channel.site,
        camera=camera,
        title=f"Test notification from Argus to {channel.name}",
        kind="test",
        severity=Severity.LOW,
        started_at=now,
        last_seen_at=now,
        created_at=now,
        explanation={"reason": "sent with “Send test” in the admin", "conditions": []},
    )
