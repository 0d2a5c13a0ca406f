"""Celery adapters: the only module of `detection` that imports Django.

Tasks take ids, re-read rows, and call monitor.services for every state change.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import time
from collections.abc import Sequence

from celery import shared_task
from django.conf import settings

from detection import pipeline
from detection.detectors import load_detector
from detection.render import draw_boxes, encode_jpeg, write_atomically
from detection.rules import RuleHit, ZoneRuleSpec, normalize_box
from detection.schedule import parse_schedule
from detection.sources import SourceError, SourceOptions, UnsupportedSource, iter_frames
from detection.tracker import Track
from detection.types import Detector, Frame
from monitor import services
from monitor.live import CameraActivity, publish_now, site_group
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, ZoneKind

log = logging.getLogger(__name__)


@functools.cache
def worker_detector() -> Detector:
    """Loaded once per worker process, on first use (web processes never import it)."""
    return load_detector(settings.ARGUS_DETECTOR)


def rule_specs(camera: Camera) -> list[ZoneRuleSpec]:
    rules = AlertRule.objects.filter(enabled=True, zone__camera=camera, zone__kind=ZoneKind.POLYGON)
    return [
        ZoneRuleSpec(
            rule_id=rule.pk,
            polygon=[(float(x), float(y)) for x, y in rule.zone.points],
            actor_class=rule.actor_class,
            min_confidence=rule.min_confidence,
            min_duration_s=rule.min_duration_s,
            schedule=parse_schedule(rule.schedule),
            tz_name=camera.site.timezone,
        )
        for rule in rules.select_related("zone")
    ]


def _actors(tracks: Sequence[Track], width: int, height: int) -> list[dict[str, object]]:
    return [
        {
            "track": t.id,
            "label": t.label,
            "score": round(t.score, 3),
            "box": [round(v, 4) for v in normalize_box(t.box, width, height)],
        }
        for t in tracks
    ]


class DjangoSink:
    """Turns pipeline results into service calls, snapshots and live pushes."""

    def __init__(self, camera: Camera, owner: str, *, slice_s: float, push_every_s: float = 0.5) -> None:
        self.camera_id, self.site_id, self.owner = camera.pk, camera.site_id, owner
        self.deadline = time.monotonic() + slice_s
        self.push_every_s = push_every_s
        self.last_push = 0.0
        self.last_frame_at: Frame | None = None
        self.snapshot_version = 0
        self.slice_done = False

    def on_frame(self, frame: Frame, tracks: Sequence[Track]) -> None:
        if self.last_frame_at is None:
            services.camera_streaming(self.camera_id)
        self.last_frame_at = frame
        now = time.monotonic()
        if now - self.last_push < self.push_every_s:
            return
        self.last_push = now
        height, width = frame.image.shape[:2]
        write_atomically(snapshot_path(self.camera_id), encode_jpeg(frame.image, quality=70))
        self.snapshot_version += 1
        event: CameraActivity = {
            "type": "camera.activity",
            "camera_id": self.camera_id,
            "time": frame.time.isoformat(),
            "actors": _actors(tracks, width, height),  # type: ignore[typeddict-item]
            "snapshot_version": self.snapshot_version,
        }
        publish_now(site_group(self.site_id), event)

    def on_hits(self, frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> None:
        fired = {h.track_id for h in hits}
        boxes = [(t.box, f"{t.label} #{t.id}") for t in tracks if t.id in fired]
        poster = encode_jpeg(draw_boxes(frame.image, boxes, highlight=True)) if boxes else None
        services.record_rule_hits(self.camera_id, hits, poster)

    def keep_going(self, stats: pipeline.LoopStats) -> bool:
        frame_time = self.last_frame_at.time if self.last_frame_at else None
        if not services.renew_camera_lease(self.camera_id, self.owner, fps=stats.fps, last_frame_at=frame_time):
            log.warning("camera %s: lease lost, stopping", self.camera_id)
            return False
        if time.monotonic() >= self.deadline:
            self.slice_done = True
            return False
        return True


def _owner(task_id: str | None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or 'eager'}"


def analyse(camera: Camera, owner: str, *, realtime: bool = True, max_frames: int | None = None) -> DjangoSink:
    """Run the pipeline on a camera we hold the lease of, for one slice (or `max_frames`)."""
    options = SourceOptions(fps=camera.analysis_fps, loop=camera.loop, realtime=realtime)
    state = pipeline.new_state(worker_detector(), rule_specs(camera))
    sink = DjangoSink(camera, owner, slice_s=settings.ARGUS_CAMERA_SLICE_SECONDS)
    pipeline.run(itertools.islice(iter_frames(camera.stream_url, options), max_frames), state, sink)
    return sink


@shared_task(bind=True, ignore_result=True)
def analyse_camera(self: object, camera_id: int, token: str | None = None) -> str:
    """Analyse one camera for a time slice while holding its lease, then hand it to the next task."""
    request = getattr(self, "request", None)
    owner = _owner(getattr(request, "id", None))
    if not services.acquire_camera_lease(camera_id, owner, token):
        return "busy"
    camera = Camera.objects.select_related("site").get(pk=camera_id)
    try:
        sink = analyse(camera, owner)
    except (SourceError, UnsupportedSource) as exc:
        delay = services.camera_failed(camera_id, owner, str(exc))
        log.warning("camera %s failed (%s); retry in %.0f s", camera_id, exc, delay)
        return "failed"
    finally:
        services.release_camera_lease(camera_id, owner)
    if not sink.slice_done:
        services.camera_failed(camera_id, owner, "the stream ended")
        return "ended"
    dispatch_camera(camera_id)
    return "slice done"


def dispatch_camera(camera_id: int) -> bool:
    token = services.claim_camera_for_dispatch(camera_id)
    if token is None:
        return False
    analyse_camera.delay_on_commit(camera_id, token)
    return True


@shared_task(ignore_result=True)
def dispatch_cameras() -> int:
    """Beat: queue every enabled camera that nobody analyses and whose retry time has come."""
    return sum(dispatch_camera(camera_id) for camera_id in services.cameras_due_for_dispatch())
