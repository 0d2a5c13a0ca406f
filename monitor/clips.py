"""Incident clips on the Django side: where their files live in media storage, and the store the
camera worker's clip recorder reports to. Worker only: it imports detection.recording (PyAV)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

from detection.recording import ClipPaths, ClipRecorder, ClipRequest, EncodedClip
from monitor import services
from monitor.models import Camera

T = TypeVar("T")


def clip_names(request: ClipRequest) -> tuple[str, str]:
    """Names relative to MEDIA_ROOT, as the Incident.clip and poster fields store them."""
    stem = f"clips/{request.trigger:%Y/%m/%d}/incident-{request.incident_id}"
    return f"{stem}.mp4", f"{stem}.jpg"


def _in_own_connection(call: Callable[[], T]) -> T:
    """The encoder thread opens its own database connection; close it, so none is left to go stale."""
    close_old_connections()
    try:
        return call()
    finally:
        connection.close()


class DjangoClipStore:
    """Clip files go under MEDIA_ROOT; their state changes go through monitor.services."""

    def __init__(self, media_root: Path | None = None) -> None:
        self.media_root = Path(media_root or settings.MEDIA_ROOT)

    def paths(self, request: ClipRequest) -> ClipPaths:
        video, poster = clip_names(request)
        return ClipPaths(video=self.media_root / video, poster=self.media_root / poster)

    def ready(self, request: ClipRequest, clip: EncodedClip) -> None:
        video = self._name(clip.video)
        poster = self._name(clip.poster) if clip.poster else ""
        _in_own_connection(lambda: services.attach_clip(request.incident_id, video, clip.started_at, poster))

    def failed(self, request: ClipRequest, error: str, *, missing: bool) -> None:
        _in_own_connection(lambda: services.clip_failed(request.incident_id, error, missing=missing))

    def _name(self, path: Path) -> str:
        return path.relative_to(self.media_root).as_posix()


def recorder_for(camera: Camera) -> ClipRecorder | None:
    """A clip recorder with the camera's pre- and post-roll; None when both are zero (no clips)."""
    if camera.pre_roll_s <= 0 and camera.post_roll_s <= 0:
        return None
    return ClipRecorder(DjangoClipStore(), pre_roll_s=camera.pre_roll_s, post_roll_s=camera.post_roll_s)
