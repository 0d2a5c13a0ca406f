"""Live push to browsers through Channels. Only services publish, and only after commit.

Each event type has a TypedDict schema; `type` is the consumer handler name (dots become underscores).
"""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from monitor.models import Camera, Incident

log = logging.getLogger(__name__)


class ActorBox(TypedDict):
    track: int
    label: str
    score: float
    box: list[float]  # normalized x1, y1, x2, y2
    actions: dict[str, float]  # the track's smoothed action scores; empty without an action model


class CameraActivity(TypedDict):
    type: Literal["camera.activity"]
    camera_id: int
    time: str  # ISO 8601, UTC
    actors: list[ActorBox]
    snapshot_version: int  # bumps when a new snapshot JPEG was written


class CameraHealth(TypedDict):
    type: Literal["camera.health"]
    camera_id: int
    state: str
    reason: str
    last_frame_at: str | None
    measured_fps: float | None
    reconnect_count: int
    lease_owner: str  # the worker analysing the camera; empty when no lease is live


class IncidentEvent(TypedDict):
    type: Literal["incident.opened", "incident.updated"]
    incident_id: int
    camera_id: int
    camera: str
    title: str
    severity: str
    status: str
    started_at: str
    last_seen_at: str
    url: str


class AccountDisabled(TypedDict):
    """To the user's own group: their sockets close (monitor.accounts)."""

    type: Literal["account.disabled"]
    user_id: int


LiveEvent = CameraActivity | CameraHealth | IncidentEvent | AccountDisabled


def camera_health_event(camera: Camera) -> CameraHealth:
    return {
        "type": "camera.health",
        "camera_id": camera.pk,
        "state": camera.health_state,
        "reason": camera.health_reason,
        "last_frame_at": camera.last_frame_at.isoformat() if camera.last_frame_at else None,
        "measured_fps": camera.measured_fps,
        "reconnect_count": camera.reconnect_count,
        "lease_owner": camera.lease_owner if camera.lease_is_live() else "",
    }


def incident_event(incident: Incident, *, opened: bool = False) -> IncidentEvent:
    return {
        "type": "incident.opened" if opened else "incident.updated",
        "incident_id": incident.pk,
        "camera_id": incident.camera_id,
        "camera": incident.camera.name,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "started_at": incident.started_at.isoformat(),
        "last_seen_at": incident.last_seen_at.isoformat(),
        "url": incident.get_absolute_url(),
    }


def site_group(site_id: int) -> str:
    return f"site-{site_id}"


def user_group(user_id: int) -> str:
    """Every socket of one user, whatever its site."""
    return f"user-{user_id}"


def publish_now(group: str, event: LiveEvent) -> None:
    """At-most-once push; a browser that missed it re-reads state when it reconnects."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, dict(event))
    except Exception:  # the push is best effort: never fail the state change that caused it
        log.warning("live push to %s failed", group, exc_info=True)


def publish_on_commit(group: str, event: LiveEvent) -> None:
    transaction.on_commit(lambda: publish_now(group, event))
