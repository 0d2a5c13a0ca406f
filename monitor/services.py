"""Every state change of the domain, one transaction each. Views, consumers and tasks call these.

Live pushes are queued with publish_on_commit, so browsers never hear of a change that rolled back.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detection.rules import RuleHit
from monitor.live import camera_health_event, incident_event, publish_on_commit, site_group
from monitor.models import (
    AlertRule,
    AuditLog,
    Camera,
    Delivery,
    Event,
    HealthState,
    Incident,
    Site,
)

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


@transaction.atomic
def claim_camera_for_dispatch(camera_id: int) -> str | None:
    """Reserve a free camera for a task about to be queued; returns the token the task must show."""
    now = timezone.now()
    token = f"queued:{uuid.uuid4().hex}"
    ttl = timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS * 4)  # time to wait in the queue
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    updated = Camera.objects.filter(_lease_free(now), due, pk=camera_id, enabled=True).update(
        lease_owner=token, lease_expires_at=now + ttl
    )
    return token if updated else None


def cameras_due_for_dispatch() -> list[int]:
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return list(Camera.objects.filter(_lease_free(now), due, enabled=True).values_list("pk", flat=True))


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
    """Extend our lease and record liveness; False when the lease was lost (another worker has it)."""
    with transaction.atomic():
        now = timezone.now()
        expires = now + timedelta(seconds=settings.ARGUS_CAMERA_LEASE_SECONDS)
        updated = Camera.objects.filter(pk=camera_id, lease_owner=owner, enabled=True).update(
            lease_expires_at=expires, measured_fps=round(fps, 2), last_frame_at=last_frame_at
        )
        if updated and last_frame_at is not None:
            _set_health(camera_id, HealthState.ONLINE, "")
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
    """The source failed: mark the camera offline with the reason, back off, free the lease."""
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    camera.failure_streak += 1
    delay = retry_delay_s(camera.failure_streak, cap_s=settings.ARGUS_CAMERA_RETRY_MAX_SECONDS)
    camera.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    if camera.lease_owner == owner:
        camera.lease_owner, camera.lease_expires_at = "", None
    camera.save(update_fields=["failure_streak", "next_attempt_at", "lease_owner", "lease_expires_at"])
    _set_health(camera_id, HealthState.OFFLINE, reason[:500])
    return delay


@transaction.atomic
def camera_streaming(camera_id: int) -> None:
    """The source delivered frames: reset the failure streak and count a reconnect after failures."""
    camera = Camera.objects.select_for_update().get(pk=camera_id)
    if camera.failure_streak:
        camera.reconnect_count += 1
    camera.failure_streak, camera.next_attempt_at = 0, None
    camera.save(update_fields=["failure_streak", "next_attempt_at", "reconnect_count"])
    _set_health(camera_id, HealthState.ONLINE, "")


def _set_health(camera_id: int, state: str, reason: str) -> None:
    camera = Camera.objects.get(pk=camera_id)
    if camera.health_state == state and camera.health_reason == reason:
        return
    camera.health_state, camera.health_reason = state, reason
    camera.health_changed_at = timezone.now()
    camera.save(update_fields=["health_state", "health_reason", "health_changed_at"])
    publish_on_commit(site_group(camera.site_id), camera_health_event(camera))


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
            "action": "present",
            "score": hit.score,
            "boxes": [list(b) for b in hit.boxes],
        },
    )
    return event


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
    return {
        "rule": rule.name,
        "zone": rule.zone.name,
        "conditions": [
            {"name": "actor_class", "value": hit.label, "required": rule.actor_class},
            {"name": "confidence", "value": hit.score, "required": f">= {rule.min_confidence}"},
            {"name": "duration_s", "value": hit.dwell_s, "required": f">= {rule.min_duration_s}"},
        ],
        "first_track": hit.track_id,
    }


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
        incident.poster.save(f"incident-{incident.pk}.jpg", ContentFile(poster), save=True)
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
        incident.notes = f"{incident.notes}\n{note}".strip()
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
