"""Every state change of the domain, one transaction each. Views, consumers and tasks call these.

Live pushes are queued with publish_on_commit, so browsers never hear of a change that rolled back.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from detection.rules import RuleHit
from monitor.live import camera_health_event, incident_event, publish_on_commit, site_group
from monitor.models import (
    AlertRule,
    AuditLog,
    Camera,
    ClipStatus,
    Delivery,
    Event,
    HealthState,
    Incident,
    Membership,
    NotificationChannel,
    Role,
    Severity,
    Site,
)

if TYPE_CHECKING:
    from monitor.notify.probe import ProbeResult

log = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser


def _user_or_none(user: User | None) -> Any:
    return user if user is not None and user.is_authenticated else None


class ServiceError(Exception):
    """A request the domain refuses; the message is safe to show the user."""


def audit(actor: User | None, site: Site | None, action: str, target: Any, **details: Any) -> None:
    AuditLog.objects.create(
        actor=_user_or_none(actor),
        site=site,
        action=action,
        target_type=type(target).__name__,
        target_id=str(getattr(target, "pk", target)),
        details=details,
    )


# --- Cameras: leases and health -------------------------------------------------------------


def _lease_free(now: datetime) -> Q:
    return Q(lease_owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)


def _dispatchable(now: datetime) -> Q:
    """Enabled, due for an attempt, and not FAILED: a failed source waits until the camera is saved."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return _lease_free(now) & due & Q(enabled=True) & ~Q(health_state=HealthState.FAILED)


@transaction.atomic
def claim_camera_for_dispatch(camera_id: int) -> str | None:
    """Reserve a free camera for a task about to be queued; returns the token the task must show."""
    now = timezone.now()
    token = f"queued:{uuid.uuid4().hex}"
    ttl = timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS * 4)  # time to wait in the queue
    updated = Camera.objects.filter(_dispatchable(now), pk=camera_id).update(
        lease_owner=token, lease_expires_at=now + ttl
    )
    return token if updated else None


def cameras_due_for_dispatch() -> list[int]:
    return list(Camera.objects.filter(_dispatchable(timezone.now())).values_list("pk", flat=True))


@transaction.atomic
def acquire_camera_lease(camera_id: int, owner: str, token: str | None = None) -> bool:
    """Take the camera if it is free or reserved for us; exactly one worker can win."""
    now = timezone.now()
    mine = Q(lease_owner=token) if token else Q(pk__in=[])
    expires = now + timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS)
    updated = Camera.objects.filter(_lease_free(now) | mine, pk=camera_id, enabled=True).update(
        lease_owner=owner, lease_expires_at=expires
    )
    return updated == 1


def renew_camera_lease(camera_id: int, owner: str, *, fps: float, last_frame_at: datetime | None) -> bool:
    """Extend our lease and record liveness; False when the lease was lost (another worker has it).

    Health is not touched here: the worker's supervisor reports it (online, degraded, offline)."""
    with transaction.atomic():
        now = timezone.now()
        expires = now + timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS)
        fields: dict[str, Any] = {"lease_expires_at": expires, "measured_fps": round(fps, 2)}
        if last_frame_at is not None:  # before this slice's first frame, keep the last one known
            fields["last_frame_at"] = last_frame_at
        updated = Camera.objects.filter(pk=camera_id, lease_owner=owner, enabled=True).update(**fields)
    return updated == 1


@transaction.atomic
def release_camera_lease(camera_id: int, owner: str) -> None:
    Camera.objects.filter(pk=camera_id, lease_owner=owner).update(lease_owner="", lease_expires_at=None)


def retry_delay_s(failures: int, *, cap_s: float, base_s: float = 2.0) -> float:
    """Capped exponential backoff with full jitter, so failed cameras do not retry in lockstep."""
    ceiling = min(cap_s, base_s * 2 ** max(0, failures - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter, not cryptography)


@transaction.atomic
def camera_failed(camera_id: int, owner: str, reason: str) -> float:
    """The source failed: mark the camera offline with the reason, back off, free the lease.

    Returns the retry delay, or 0 when another worker holds the camera now: a worker whose lease
    expired while it was stuck reports a stale view, which must not mark a camera offline (and back
    it off) while the worker that took it over is streaming it.
    """
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    if camera.lease_owner not in ("", owner):
        return 0.0
    camera.failure_streak += 1
    delay = retry_delay_s(camera.failure_streak, cap_s=settings.ARGUS_CAMERA_RETRY_MAX_SECONDS)
    camera.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    if camera.lease_owner == owner:
        camera.lease_owner, camera.lease_expires_at = "", None
    camera.save(update_fields=["failure_streak", "next_attempt_at", "lease_owner", "lease_expires_at"])
    _set_health(camera_id, HealthState.OFFLINE, reason[:500])
    return delay


def _lost_to_another(camera: Camera, owner: str | None) -> bool:
    """A worker that lost its lease must not overwrite the health the new holder reports."""
    return owner is not None and camera.lease_owner != owner


@transaction.atomic
def camera_streaming(camera_id: int, owner: str | None = None) -> None:
    """Frames flow (again): reset the failure streak, count a reconnect after failures, and resolve
    the camera-offline incident of the outage that just ended."""
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    if _lost_to_another(camera, owner):
        return
    if camera.failure_streak:
        camera.reconnect_count += 1
    camera.failure_streak, camera.next_attempt_at = 0, None
    camera.save(update_fields=["failure_streak", "next_attempt_at", "reconnect_count"])
    camera = _set_health(camera_id, HealthState.ONLINE, "")
    _resolve_offline_incidents(camera)


@transaction.atomic
def camera_degraded(camera_id: int, reason: str, owner: str | None = None) -> None:
    """Connected, but too few frames arrive for analysis (a slow network, camera or worker)."""
    if _lost_to_another(Camera.objects.select_for_update().get(pk=camera_id), owner):
        return
    _set_health(camera_id, HealthState.DEGRADED, reason[:500])


@transaction.atomic
def camera_offline(camera_id: int, reason: str, *, failures: int, owner: str | None = None) -> int | None:
    """No frames; the worker keeps retrying and calls this after every failed attempt. Opens the
    camera-offline incident once the outage has lasted Camera.offline_incident_after_s; returns its
    id when this call opened it."""
    if _lost_to_another(Camera.objects.select_for_update().get(pk=camera_id), owner):
        return None
    Camera.objects.filter(pk=camera_id).update(failure_streak=failures)
    camera = _set_health(camera_id, HealthState.OFFLINE, reason[:500])
    now = timezone.now()
    down_s = (now - (camera.health_changed_at or now)).total_seconds()
    if down_s < camera.offline_incident_after_s:
        return None
    incident = _open_offline_incident(camera, reason, now)
    return incident.pk if incident else None


@transaction.atomic
def camera_source_failed(camera_id: int, owner: str, reason: str) -> None:
    """The source can never work as configured (empty or corrupt file, no video, unknown codec):
    FAILED, and no automatic retry until the camera is saved again. Nothing will retry it, so its
    camera-offline incident opens at once."""
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    if camera.lease_owner == owner:
        camera.lease_owner, camera.lease_expires_at = "", None
    camera.next_attempt_at = None
    camera.save(update_fields=["lease_owner", "lease_expires_at", "next_attempt_at"])
    camera = _set_health(camera_id, HealthState.FAILED, reason[:500])
    _open_offline_incident(camera, reason, timezone.now())


@transaction.atomic
def camera_saved(camera_id: int, user: User | None) -> None:
    """Someone edited the camera: a FAILED source gets tried again, now rather than after a backoff."""
    camera = Camera.objects.select_for_update().select_related("site").get(pk=camera_id)
    if camera.health_state != HealthState.FAILED:
        return
    camera.failure_streak, camera.next_attempt_at = 0, None
    camera.save(update_fields=["failure_streak", "next_attempt_at"])
    _set_health(camera_id, HealthState.UNKNOWN, "")
    audit(user, camera.site, "camera.retry", camera, was=camera.health_reason)


def _set_health(camera_id: int, state: str, reason: str) -> Camera:
    camera = Camera.objects.select_related("site").get(pk=camera_id)
    if camera.health_state == state and camera.health_reason == reason:
        return camera
    if camera.health_state != state:  # a new reason within the same state is not a new outage
        camera.health_changed_at = timezone.now()
    camera.health_state, camera.health_reason = state, reason
    camera.save(update_fields=["health_state", "health_reason", "health_changed_at"])
    publish_on_commit(site_group(camera.site_id), camera_health_event(camera))
    return camera


def _unwatched(now: datetime) -> Q:
    """Enabled cameras that no worker is analysing: no live lease, or only a queued claim."""
    no_worker = _lease_free(now) | Q(lease_owner__startswith="queued:")
    return Q(enabled=True) & no_worker & ~Q(health_state__in=[HealthState.FAILED, HealthState.UNKNOWN])


def sweep_unwatched_cameras(now: datetime | None = None) -> list[int]:
    """Beat: a camera that was streaming but that no worker analyses any more (every worker dead or
    busy) goes offline, and gets its camera-offline incident in time, like any other outage."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS)
    stale = Q(last_frame_at__isnull=True) | Q(last_frame_at__lt=now - grace)
    changed = []
    for camera in Camera.objects.filter(_unwatched(now), stale).only("pk", "health_state", "last_frame_at"):
        with transaction.atomic():
            if _mark_unwatched(camera.pk, now, grace):
                changed.append(camera.pk)
    return changed


def _mark_unwatched(camera_id: int, now: datetime, grace: timedelta) -> bool:
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    if camera.lease_is_live(now) and not camera.lease_owner.startswith("queued:"):
        return False  # a worker took it meanwhile
    if camera.health_state in (HealthState.ONLINE, HealthState.DEGRADED):
        last = camera.last_frame_at.isoformat(timespec="seconds") if camera.last_frame_at else "never"
        camera = _set_health(camera_id, HealthState.OFFLINE, f"no worker is analysing this camera (last frame {last})")
    if camera.health_state != HealthState.OFFLINE:
        return False
    down_s = (now - (camera.health_changed_at or now)).total_seconds()
    if down_s >= camera.offline_incident_after_s:
        _open_offline_incident(camera, camera.health_reason, now)
    return True


# --- Camera-offline incidents ---------------------------------------------------------------

OFFLINE_INCIDENT = "camera_offline"
_ACTIVE = [Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED]


def _human_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _open_offline_incident(camera: Camera, reason: str, now: datetime) -> Incident | None:
    """One incident per outage: none while one is active, nor when one of this outage was closed
    by an operator while the camera stays down."""
    since = camera.health_changed_at or now
    outage = Incident.objects.filter(camera=camera, kind=OFFLINE_INCIDENT)
    if outage.filter(Q(status__in=_ACTIVE) | Q(started_at__gte=since)).exists():
        return None
    down_s = round((now - since).total_seconds(), 1)
    incident = Incident.objects.create(
        site=camera.site,
        camera=camera,
        kind=OFFLINE_INCIDENT,
        title=f"Camera offline: {camera.name}",
        severity=Severity.HIGH,
        started_at=since,
        last_seen_at=now,
        explanation={
            "reason": reason,
            "offline_for_s": down_s,
            "conditions": [
                {"name": "offline_for_s", "value": down_s, "required": f">= {camera.offline_incident_after_s:g}"},
                {"name": "reason", "value": reason, "required": "frames arriving"},
            ],
        },
    )
    channels = camera.site.channels.filter(enabled=True, camera_health=True)
    Delivery.objects.bulk_create([Delivery(incident=incident, channel=c) for c in channels])  # the outbox
    audit(None, camera.site, "incident.opened", incident, kind=OFFLINE_INCIDENT, reason=reason)
    publish_on_commit(site_group(camera.site_id), incident_event(incident, opened=True))
    return incident


def _resolve_offline_incidents(camera: Camera) -> None:
    now = timezone.now()
    for incident in Incident.objects.select_for_update().filter(
        camera=camera, kind=OFFLINE_INCIDENT, status__in=_ACTIVE
    ):
        note = f"back online after {_human_duration((now - incident.started_at).total_seconds())}"
        incident.status, incident.resolved_at, incident.last_seen_at = Incident.Status.RESOLVED, now, now
        incident.notes = f"{incident.notes}\n{note}".strip()
        incident.save(update_fields=["status", "resolved_at", "last_seen_at", "notes"])
        audit(None, camera.site, "incident.resolved", incident, note=note, by="system")
        publish_on_commit(site_group(camera.site_id), incident_event(incident))


# --- Events and incidents -------------------------------------------------------------------


def _upsert_event(camera: Camera, rule: AlertRule, hit: RuleHit) -> Event:
    event, _ = Event.objects.update_or_create(
        camera=camera,
        track_id=str(hit.track_id),
        segment_start=hit.started_at,
        defaults={
            "rule": rule,
            "segment_end": hit.last_seen_at,
            "actor_class": hit.label,
            "action": hit.action,
            "score": hit.score,
            "boxes": [list(b) for b in hit.boxes],
        },
    )
    return event


EVENT_WRITE_BATCH = 1000
_EVENT_KEY = ["camera", "track_id", "segment_start"]
# What a repeated write refreshes; the incident link stays as record_rule_hits set it.
_EVENT_REFRESHED = ["rule", "segment_end", "actor_class", "action", "score", "boxes"]


def write_events(events: Sequence[Event], *, batch_size: int = EVENT_WRITE_BATCH) -> int:
    """Insert events in batches, one transaction each, idempotent on camera x track x segment start:
    a row already there (a re-run of the same footage, a retried batch) is updated, never duplicated."""
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy_events(batch)
            else:
                Event.objects.bulk_create(
                    batch, update_conflicts=True, unique_fields=_EVENT_KEY, update_fields=_EVENT_REFRESHED
                )
    return len(events)


_EVENT_COLUMNS = (
    "camera_id, rule_id, incident_id, track_id, segment_start, segment_end, actor_class, action, score, boxes"
)
_EVENT_UPSERT = f"""
    INSERT INTO monitor_event ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM argus_event_in
    ON CONFLICT (camera_id, track_id, segment_start) DO UPDATE SET
        rule_id = EXCLUDED.rule_id, segment_end = EXCLUDED.segment_end, actor_class = EXCLUDED.actor_class,
        action = EXCLUDED.action, score = EXCLUDED.score, boxes = EXCLUDED.boxes
"""  # noqa: S608  (no user input: fixed table and column names)


_EVENT_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS argus_event_in "  # noqa: S608  (fixed names, no user input)
    f"ON COMMIT DELETE ROWS AS SELECT {_EVENT_COLUMNS} FROM monitor_event WITH NO DATA"
)


def _copy_events(batch: Sequence[Event]) -> None:
    """Postgres: COPY into a temporary table, then one upsert; several times faster than INSERTs."""
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_STAGING)
        cursor.execute("TRUNCATE argus_event_in")  # inside an outer transaction, ON COMMIT comes too late
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        with raw.copy(f"COPY argus_event_in ({_EVENT_COLUMNS}) FROM STDIN") as copy:
            for e in batch:
                copy.write_row(
                    (e.camera_id, e.rule_id, e.incident_id, e.track_id, e.segment_start, e.segment_end)
                    + (e.actor_class, e.action, e.score, json.dumps(e.boxes))
                )
        cursor.execute(_EVENT_UPSERT)


def _active_incident_for(rule: AlertRule, hit: RuleHit) -> Incident | None:
    """The incident this hit belongs to: one that is still active and was seen within the cooldown."""
    horizon = hit.started_at - timedelta(seconds=rule.cooldown_s)
    return (
        Incident.objects.select_for_update()
        .filter(rule=rule, status__in=[Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED])
        .filter(last_seen_at__gte=horizon)
        .order_by("-last_seen_at")
        .first()
    )


def _explanation(rule: AlertRule, hit: RuleHit) -> dict[str, Any]:
    """Why it fired: the condition values the engine measured against the rule's thresholds."""
    conditions = hit.explain() or [  # a hit without conditions (older code): what the rule required
        {"name": "actor_class", "value": hit.label, "required": rule.actor_class},
        {"name": "confidence", "value": hit.score, "required": f">= {rule.min_confidence}"},
        {"name": "duration_s", "value": hit.dwell_s, "required": f">= {rule.min_duration_s}"},
    ]
    return {
        "rule": rule.name,
        "zone": rule.zone.name,
        "kind": hit.kind,
        "conditions": conditions,
        "summary": hit.summary,
        "first_track": hit.track_id,
        "tracks": list(hit.track_ids or (hit.track_id,)),
    }


def _save_poster(incident: Incident, poster: bytes) -> None:
    """Best effort: a full media disk must not cost the incident itself."""
    name = f"incident-{incident.pk}.jpg"
    try:
        incident.poster.save(name, ContentFile(poster), save=True)
    except OSError as exc:
        incident.poster = ""
        storage = Incident._meta.get_field("poster").storage  # a half-written file must not stay behind
        storage.delete(Incident._meta.get_field("poster").generate_filename(incident, name))
        log.warning("incident %s: poster not saved (%s)", incident.pk, exc)


def open_incident(rule: AlertRule, camera: Camera, hit: RuleHit, poster: bytes | None) -> Incident:
    """Create an incident and its outbox rows (one per notification channel) in the caller's transaction."""
    incident = Incident.objects.create(
        site=camera.site,
        camera=camera,
        rule=rule,
        title=f"{rule.name}: {hit.label} in {rule.zone.name}",
        severity=rule.severity,
        started_at=hit.started_at,
        last_seen_at=hit.last_seen_at,
        track_ids=[hit.track_id],
        explanation=_explanation(rule, hit),
    )
    if poster:
        _save_poster(incident, poster)
    Delivery.objects.bulk_create([Delivery(incident=incident, channel=c) for c in rule.channels.filter(enabled=True)])
    audit(None, camera.site, "incident.opened", incident, rule=rule.pk, track=hit.track_id)
    publish_on_commit(site_group(camera.site_id), incident_event(incident, opened=True))
    return incident


def _grow_incident(incident: Incident, hit: RuleHit) -> None:
    changed = hit.last_seen_at > incident.last_seen_at or hit.track_id not in incident.track_ids
    if not changed:
        return
    incident.last_seen_at = max(incident.last_seen_at, hit.last_seen_at)
    if hit.track_id not in incident.track_ids:
        incident.track_ids = [*incident.track_ids, hit.track_id]
    incident.save(update_fields=["last_seen_at", "track_ids"])
    publish_on_commit(site_group(incident.site_id), incident_event(incident))


@transaction.atomic
def record_rule_hits(camera_id: int, hits: Sequence[RuleHit], poster: bytes | None = None) -> list[int]:
    """Write the events of these hits and open or grow incidents; returns ids of incidents opened."""
    camera = Camera.objects.select_related("site").get(pk=camera_id)
    rules = {
        r.pk: r
        for r in AlertRule.objects.select_related("zone").filter(
            pk__in={h.rule_id for h in hits}, enabled=True, site=camera.site
        )
    }
    opened: list[int] = []
    for hit in hits:
        rule = rules.get(hit.rule_id)
        if rule is None:  # deleted or disabled since the worker loaded its rules
            continue
        event = _upsert_event(camera, rule, hit)
        incident = event.incident or _active_incident_for(rule, hit)
        if incident is None:
            incident = open_incident(rule, camera, hit, poster)
            opened.append(incident.pk)
        else:
            _grow_incident(incident, hit)
        if event.incident_id != incident.pk:
            event.incident = incident
            event.save(update_fields=["incident"])
    return opened


# --- Incident lifecycle ---------------------------------------------------------------------

_NEXT = {
    "acknowledge": {Incident.Status.OPEN},
    "resolve": {Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED},
    "false_alarm": {Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED},
}


def _transition(incident_id: int, user: User, verb: str, status: str, note: str) -> Incident:
    incident = Incident.objects.select_for_update().select_related("camera").get(pk=incident_id)
    if incident.status not in _NEXT[verb]:
        raise ServiceError(f"cannot {verb.replace('_', ' ')} an incident that is {incident.get_status_display()}")
    now = timezone.now()
    incident.status = status
    if verb == "acknowledge":
        incident.acknowledged_at = now
    else:
        incident.resolved_at = now
    if note:
        _append_note(incident, user, note, now)
    incident.save()
    audit(user, incident.site, f"incident.{verb}", incident, note=note)
    publish_on_commit(site_group(incident.site_id), incident_event(incident))
    return incident


@transaction.atomic
def acknowledge_incident(incident_id: int, user: User, note: str = "") -> Incident:
    return _transition(incident_id, user, "acknowledge", Incident.Status.ACKNOWLEDGED, note)


@transaction.atomic
def resolve_incident(incident_id: int, user: User, note: str = "", *, false_alarm: bool = False) -> Incident:
    if false_alarm:
        return _transition(incident_id, user, "false_alarm", Incident.Status.FALSE_ALARM, note)
    return _transition(incident_id, user, "resolve", Incident.Status.RESOLVED, note)


def _append_note(incident: Incident, user: User | None, text: str, now: datetime) -> None:
    """Notes are an append-only log in the incident: who wrote what, when (UTC)."""
    author = user.get_username() if user is not None and user.is_authenticated else "system"
    line = f"[{now:%Y-%m-%d %H:%M} UTC] {author}: {text.strip()}"
    incident.notes = f"{incident.notes}\n{line}".strip()


def _site_operator(site: Site, user_id: int) -> Any:
    """Only someone who may act on the incident can be given it: an active operator or admin."""
    membership = Membership.objects.select_related("user").filter(site=site, user_id=user_id).first()
    if membership is None or not membership.allows(Role.OPERATOR) or not membership.user.is_active:
        raise ServiceError(f"user {user_id} is not an operator or admin of this site")
    return membership.user


@transaction.atomic
def assign_incident(incident_id: int, user: User, assignee_id: int | None) -> Incident:
    """Give the incident to an operator or admin of its site; None takes it back from them."""
    incident = Incident.objects.select_for_update().select_related("camera", "site").get(pk=incident_id)
    assignee = _site_operator(incident.site, assignee_id) if assignee_id is not None else None
    previous = incident.assignee_id
    if previous == assignee_id:
        return incident  # nothing changed: no audit entry, no push
    incident.assignee = assignee
    incident.save(update_fields=["assignee"])
    username = assignee.get_username() if assignee else None
    audit(user, incident.site, "incident.assign", incident, assignee=assignee_id, username=username, previous=previous)
    publish_on_commit(site_group(incident.site_id), incident_event(incident))
    return incident


@transaction.atomic
def add_note(incident_id: int, user: User, text: str) -> Incident:
    """Append a note (any status: a closed incident still gathers findings, e.g. why it was false)."""
    if not text.strip():
        raise ServiceError("a note needs some text")
    incident = Incident.objects.select_for_update().select_related("camera", "site").get(pk=incident_id)
    _append_note(incident, user, text, timezone.now())
    incident.save(update_fields=["notes"])
    audit(user, incident.site, "incident.note", incident, note=text.strip())
    publish_on_commit(site_group(incident.site_id), incident_event(incident))
    return incident


# --- Sites ---------------------------------------------------------------------------------

SITE_SETTINGS = ("timezone", "retention_days", "media_budget_mb")


@transaction.atomic
def update_site_settings(site_id: int, user: User, **changes: Any) -> Site:
    """Change a site's time zone, retention or media budget; ValidationError (per field) if invalid."""
    unknown = set(changes) - set(SITE_SETTINGS)
    if unknown:
        raise ValueError(f"not a site setting: {', '.join(sorted(unknown))}")
    site = Site.objects.select_for_update().get(pk=site_id)
    before = {name: getattr(site, name) for name in changes}
    for name, value in changes.items():
        setattr(site, name, value)
    site.full_clean()
    changed = {name: [before[name], value] for name, value in changes.items() if before[name] != value}
    if changed:
        site.save(update_fields=list(changed))
        audit(user, site, "site.settings", site, changes=changed)
    return site


# --- Incident clips (written by the camera worker's encoder thread) -------------------------


def _clip_changed(incident_id: int, **fields: Any) -> Incident:
    incident = Incident.objects.select_for_update().select_related("camera").get(pk=incident_id)
    for name, value in fields.items():
        setattr(incident, name, value)
    incident.save(update_fields=list(fields))
    publish_on_commit(site_group(incident.site_id), incident_event(incident))
    return incident


@transaction.atomic
def clip_recording(incident_id: int) -> None:
    """The clip waits for its post-roll; the incident page says so until it is ready."""
    _clip_changed(incident_id, clip_status=ClipStatus.RECORDING, clip_error="")


@transaction.atomic
def attach_clip(incident_id: int, clip_name: str, started_at: datetime, poster_name: str = "") -> None:
    """A clip file (already in media storage under `clip_name`) belongs to the incident now."""
    fields: dict[str, Any] = {"clip_status": ClipStatus.READY, "clip_error": "", "clip_started_at": started_at}
    incident = _clip_changed(incident_id, clip=clip_name, **fields)
    if poster_name and not incident.poster:  # the poster with the actors boxed, if any, stays
        incident.poster.name = poster_name
        incident.save(update_fields=["poster"])


@transaction.atomic
def abandon_recording_clips(camera_id: int) -> int:
    """A worker starts on the camera: clips still "recording" were left by one that died mid-clip."""
    stale = list(
        Incident.objects.filter(camera_id=camera_id, clip_status=ClipStatus.RECORDING).values_list("pk", flat=True)
    )
    for incident_id in stale:
        _clip_changed(
            incident_id, clip_status=ClipStatus.MISSING, clip_error="the worker stopped before the clip was written"
        )
    return len(stale)


@transaction.atomic
def clip_failed(incident_id: int, error: str, *, missing: bool = False) -> None:
    """No clip: nothing of the window was buffered (missing), or encoding/writing failed; the incident stays."""
    status = ClipStatus.MISSING if missing else ClipStatus.FAILED
    _clip_changed(incident_id, clip_status=status, clip_error=error[:500])


# --- Notifications (the outbox relay is monitor/notify/relay.py) ----------------------------


def send_test_notification(channel_id: int, user: User | None) -> ProbeResult:
    """Send a synthetic incident through a channel now; the outcome goes to the audit log.

    No transaction around the send: a slow receiver must not hold database locks."""
    from monitor.notify.probe import send_test  # notify's relay imports this module

    channel = NotificationChannel.objects.select_related("site").get(pk=channel_id)
    result = send_test(channel)
    audit(user, channel.site, "channel.test", channel, **result.as_details())
    return result
