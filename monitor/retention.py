"""Retention: old evidence goes, each site stays within its disk budget, the media disk never fills.

`apply_retention` (beat, hourly; or `manage.py apply_retention [--dry-run]`) runs four passes:
1. repair: a row that points to a clip or poster file that is gone is cleared (clip_status=missing);
2. age: the clip and poster of an incident last seen more than its site's retention_days ago are
   removed, and events that ended before then are deleted, except those of false alarms (training
   feedback); incidents themselves stay (the history);
3. budget: a site whose clip and poster files take more than media_budget_mb loses its oldest first;
4. free space: while the media filesystem has less than ARGUS_MEDIA_MIN_FREE_MB free, the oldest
   media of any site goes.

Files are deleted inside the transaction that clears their row. If that commit fails, the row points
to a file that is gone, and the next run's repair pass fixes it. The other order (commit, then delete)
could leave files that no row knows of, which no pass would ever remove.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from monitor.models import ClipStatus, Event, Incident, Site
from monitor.services import audit

log = logging.getLogger(__name__)

MIB = 1024 * 1024
EVENT_BATCH = 1000  # rows deleted per transaction: short write locks on SQLite, small WAL on Postgres


@dataclass(frozen=True)
class Removal:
    """The media of one incident, removed (or, in a dry run, to be removed)."""

    incident_id: int
    site_id: int
    files: tuple[str, ...]  # storage names, e.g. "clips/2026/11/24/incident-7.mp4"
    size: int  # bytes on disk
    reason: str


@dataclass
class RetentionReport:
    dry_run: bool = False
    removed: list[Removal] = field(default_factory=list)
    events_deleted: int = 0
    repaired: list[int] = field(default_factory=list)  # incidents whose rows pointed to missing files
    _removed_ids: set[int] = field(default_factory=set, repr=False)

    @property
    def freed_bytes(self) -> int:
        return sum(r.size for r in self.removed)

    def add(self, removal: Removal) -> None:
        self.removed.append(removal)
        self._removed_ids.add(removal.incident_id)

    def is_removed(self, incident_id: int) -> bool:
        """Already listed by an earlier pass; in a dry run its files are still on disk."""
        return incident_id in self._removed_ids

    def summary(self) -> dict[str, int]:
        return {
            "incidents": len(self.removed),
            "freed_bytes": self.freed_bytes,
            "events_deleted": self.events_deleted,
            "repaired": len(self.repaired),
        }


# --- Files ----------------------------------------------------------------------------------


def _name(field_file: FieldFile) -> str:
    return field_file.name or ""


def _present(field_file: FieldFile) -> bool:
    return bool(field_file.name) and field_file.storage.exists(_name(field_file))


def _size(field_file: FieldFile) -> int:
    try:
        return field_file.storage.size(_name(field_file))
    except OSError:  # already gone: it takes no space
        return 0


def _media(incident: Incident) -> list[FieldFile]:
    return [f for f in (incident.clip, incident.poster) if f.name]


def media_free_bytes() -> int:
    """Free space of the filesystem that holds MEDIA_ROOT (or of its nearest existing parent)."""
    path = Path(settings.MEDIA_ROOT).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


# --- Removing one incident's media (one transaction) ----------------------------------------


def _with_media() -> Q:
    return ~Q(clip="") | ~Q(poster="")


def _candidates(**filters: object) -> QuerySet[Incident]:
    """Incidents with a clip or poster, oldest first; a clip still being recorded is left alone."""
    rows = Incident.objects.filter(_with_media(), **filters).exclude(clip_status=ClipStatus.RECORDING)
    return rows.only("pk", "site_id", "clip", "poster", "clip_status", "last_seen_at").order_by("last_seen_at", "pk")


def _in_pages(rows: QuerySet[Incident], size: int = 500) -> Iterator[Incident]:
    """Every row, a page at a time by primary key: bounded memory, and safe to write between pages."""
    last = 0
    while page := list(rows.filter(pk__gt=last).order_by("pk")[:size]):
        yield from page
        last = page[-1].pk


def _clear_media(incident: Incident, reason: str) -> None:
    had_clip = bool(incident.clip.name)
    for field_file in _media(incident):
        field_file.storage.delete(_name(field_file))  # a file already gone is fine
    incident.clip.name, incident.poster.name = "", ""
    if had_clip:
        incident.clip_status, incident.clip_error = ClipStatus.MISSING, reason[:500]
    incident.save(update_fields=["clip", "poster", "clip_status", "clip_error"])


def remove_media(incident: Incident, reason: str, *, dry_run: bool = False) -> Removal | None:
    """Delete this incident's clip and poster and clear its row; None when the row changed meanwhile."""
    files = _media(incident)
    planned = Removal(incident.pk, incident.site_id, tuple(map(_name, files)), sum(map(_size, files)), reason)
    if dry_run:
        return planned
    with transaction.atomic():
        current = Incident.objects.select_for_update().filter(pk=incident.pk).first()
        # The clip recorder may have replaced the files or started recording since we looked.
        if current is None or current.clip_status == ClipStatus.RECORDING:
            return None
        if tuple(map(_name, _media(current))) != planned.files:
            return None
        _clear_media(current, reason)
        # Evidence removed without a person asking: the audit log says when and why.
        audit(None, current.site, "incident.media_removed", current, files=list(planned.files), reason=reason)
    log.info("incident %s: removed %s (%s)", incident.pk, ", ".join(planned.files), reason)
    return planned


# --- Pass 1: rows that point to files that are gone -----------------------------------------

MISSING_CLIP = "the clip file was missing from media storage"


def _repair(incident_id: int) -> bool:
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None or incident.clip_status == ClipStatus.RECORDING:
            return False
        fields: list[str] = []
        if incident.poster.name and not _present(incident.poster):
            incident.poster.name = ""
            fields.append("poster")
        if incident.clip_status == ClipStatus.READY and not _present(incident.clip):
            incident.clip.name, incident.clip_status, incident.clip_error = "", ClipStatus.MISSING, MISSING_CLIP
            fields += ["clip", "clip_status", "clip_error"]
        if fields:
            incident.save(update_fields=fields)
        return bool(fields)


def _broken(incident: Incident) -> bool:
    poster_gone = bool(incident.poster.name) and not _present(incident.poster)
    clip_gone = incident.clip_status == ClipStatus.READY and not _present(incident.clip)
    return poster_gone or clip_gone


def repair_missing_media(report: RetentionReport) -> None:
    """Rows that say a clip is ready (or name a poster) whose file is gone are marked missing."""
    rows = Incident.objects.filter(_with_media() | Q(clip_status=ClipStatus.READY)).exclude(
        clip_status=ClipStatus.RECORDING
    )
    for incident in _in_pages(rows.only("pk", "clip", "poster", "clip_status")):
        if _broken(incident) and (report.dry_run or _repair(incident.pk)):
            report.repaired.append(incident.pk)


# --- Pass 2: age ----------------------------------------------------------------------------


def _remove(incident: Incident, reason: str, report: RetentionReport) -> int:
    """Remove (or list) one incident's media unless an earlier pass did; returns the bytes freed."""
    if report.is_removed(incident.pk):
        return 0
    removal = remove_media(incident, reason, dry_run=report.dry_run)
    if removal is None:
        return 0
    report.add(removal)
    return removal.size


def delete_old_events(site: Site, cutoff: datetime, *, dry_run: bool = False) -> int:
    # Events of false alarms stay: they are the feedback that training learns from (a few boxes
    # per track, small next to the clips that do go).
    old = Event.objects.filter(camera__site=site, segment_end__lt=cutoff).exclude(
        incident__status=Incident.Status.FALSE_ALARM
    )
    if dry_run:
        return old.count()
    deleted = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:EVENT_BATCH]):
        with transaction.atomic():
            batch = Event.objects.filter(pk__in=ids).delete()[0]
            audit(None, site, "events.expired", site, count=batch, before=cutoff.isoformat())
        deleted += batch
    return deleted


def expire_site(site: Site, now: datetime, report: RetentionReport) -> None:
    """Evidence (clips, posters, events) that ended more than retention_days before `now` goes."""
    cutoff = now - timedelta(days=site.retention_days)
    days = site.retention_days
    reason = f"removed by retention after {days} day{'' if days == 1 else 's'}"
    for incident in _candidates(site=site, last_seen_at__lt=cutoff):
        _remove(incident, reason, report)
    report.events_deleted += delete_old_events(site, cutoff, dry_run=report.dry_run)


# --- Pass 3: per-site budget ----------------------------------------------------------------


def enforce_site_budget(site: Site, report: RetentionReport) -> None:
    """Remove this site's oldest clips and posters until its files fit in media_budget_mb."""
    incidents = [i for i in _candidates(site=site) if not report.is_removed(i.pk)]
    usage = sum(_size(f) for i in incidents for f in _media(i))
    budget = site.media_budget_mb * MIB
    reason = f"removed to keep the site within its media budget of {site.media_budget_mb} MB"
    for incident in incidents:
        if usage <= budget:
            return
        usage -= _remove(incident, reason, report)


# --- Pass 4: the disk as a whole ------------------------------------------------------------


def ensure_free_space(report: RetentionReport, free_bytes: Callable[[], int] = media_free_bytes) -> None:
    """While the media filesystem has less than ARGUS_MEDIA_MIN_FREE_MB free, remove the oldest media.

    Free space is measured once and then counted up by what each removal frees, so a dry run
    reports the same removals a real run makes (and other writers cannot make this loop forever).
    """
    wanted = settings.ARGUS_MEDIA_MIN_FREE_MB * MIB
    free = free_bytes()
    if free >= wanted:
        return
    reason = f"removed because the media disk had less than {settings.ARGUS_MEDIA_MIN_FREE_MB} MB free"
    log.warning("media disk: %d MB free, below %d MB; removing the oldest media", free // MIB, wanted // MIB)
    for incident in _candidates():
        if free >= wanted:
            return
        free += _remove(incident, reason, report)


# --- All passes -----------------------------------------------------------------------------


def apply_retention(
    *, now: datetime | None = None, dry_run: bool = False, free_bytes: Callable[[], int] = media_free_bytes
) -> RetentionReport:
    """Run every retention pass; each removal is its own transaction, so a crash loses no consistency."""
    now = now or timezone.now()
    report = RetentionReport(dry_run=dry_run)
    repair_missing_media(report)
    for site in Site.objects.order_by("pk"):
        expire_site(site, now, report)
        enforce_site_budget(site, report)
    ensure_free_space(report, free_bytes)
    return report
