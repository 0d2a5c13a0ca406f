"""Celery adapters: the only module of `detection` that imports Django.

Tasks take ids, re-read rows, and call monitor.services for every state change.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from celery import shared_task
from django.conf import settings

from detection import pipeline
from detection.detectors import limit_compute_threads, load_detector
from detection.geometry import GeometryError
from detection.recorded import estimated_frames, recording_frames
from detection.recording import ClipRecorder
from detection.render import draw_boxes, encode_jpeg, write_atomically
from detection.rules import RuleHit, ZoneRuleSpec, normalize_box
from detection.sources import SourceError, SourceOptions, UnsupportedSource, iter_frames, local_path
from detection.supervisor import Health, Supervisor, SupervisorConfig
from detection.tracker import Track
from detection.types import Detector, Frame
from monitor import services, video_jobs
from monitor.celery import BoundedDeliveryTask
from monitor.clips import recorder_for
from monitor.db_outage import through_outage
from monitor.live import CameraActivity, publish_now, site_group
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, VideoJob
from monitor.rule_specs import spec_for

log = logging.getLogger(__name__)

# A slice runs on past its end for clips still waiting for their post-roll, but no longer than this.
CLIP_GRACE_S = 65.0


def worker_detector() -> Detector:
    """A detector for one camera task (web processes never import one). The localizer's weights are
    loaded once per process and shared; each task gets its own stream of it, so no camera sees
    another's frames in its temporal cache."""
    limit_compute_threads(settings.ARGUS_WORKER_THREADS)
    configured = settings.ARGUS_LOCALIZER_CHECKPOINT
    checkpoint = Path(settings.BASE_DIR) / configured if configured else None  # relative: to the project
    return load_detector(settings.ARGUS_DETECTOR, localizer_checkpoint=checkpoint)


def rule_specs(camera: Camera) -> list[ZoneRuleSpec]:
    specs = []
    for rule in AlertRule.objects.filter(enabled=True, zone__camera=camera).select_related("zone"):
        try:
            specs.append(spec_for(rule, camera))
        except (ValueError, GeometryError) as exc:  # saved around clean() (shell, a bulk update)
            log.error("camera %s: rule %s is not usable and is skipped: %s", camera.pk, rule.pk, exc)
    return specs


def hit_poster(frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> bytes | None:
    """The frame with the boxes of the tracks that fired drawn on it (None when none is in view)."""
    fired = {h.track_id for h in hits}
    boxes = [(t.box, f"{t.label} #{t.id}") for t in tracks if t.id in fired]
    return encode_jpeg(draw_boxes(frame.image, boxes, highlight=True)) if boxes else None


def _actors(tracks: Sequence[Track], width: int, height: int) -> list[dict[str, object]]:
    return [
        {
            "track": t.id,
            "label": t.label,
            "score": round(t.score, 3),
            "box": [round(v, 4) for v in normalize_box(t.box, width, height)],
            "actions": {name: round(p, 3) for name, p in t.actions.items()},
        }
        for t in tracks
    ]


class DjangoSink:
    """Turns pipeline results into service calls, snapshots and live pushes."""

    def __init__(
        self,
        camera: Camera,
        owner: str,
        *,
        slice_s: float,
        push_every_s: float = 0.5,
        clips: ClipRecorder | None = None,
    ) -> None:
        self.camera_id, self.site_id, self.owner = camera.pk, camera.site_id, owner
        self.deadline = time.monotonic() + slice_s
        self.push_every_s = push_every_s
        self.last_push = 0.0
        self.last_frame_at: Frame | None = None
        self.snapshot_version = 0
        self.snapshot_failing = False
        self.slice_done = False
        self.clips = clips
        self.failed = False  # the source can never work as configured: no re-dispatch
        self.lease_lost = False

    def on_frame(self, frame: Frame, tracks: Sequence[Track]) -> None:
        self.last_frame_at = frame
        now = time.monotonic()
        if now - self.last_push < self.push_every_s:
            return
        self.last_push = now
        height, width = frame.image.shape[:2]
        self._write_snapshot(frame)
        event: CameraActivity = {
            "type": "camera.activity",
            "camera_id": self.camera_id,
            "time": frame.time.isoformat(),
            "actors": _actors(tracks, width, height),  # type: ignore[typeddict-item]
            "snapshot_version": self.snapshot_version,
        }
        publish_now(site_group(self.site_id), event)

    def _write_snapshot(self, frame: Frame) -> None:
        """Best effort: a full or failing media disk must never stop detection."""
        try:
            write_atomically(snapshot_path(self.camera_id), encode_jpeg(frame.image, quality=70))
        except OSError as exc:
            if not self.snapshot_failing:
                log.warning("camera %s: cannot write its snapshot (%s); analysis goes on", self.camera_id, exc)
            self.snapshot_failing = True
            return
        self.snapshot_failing = False
        self.snapshot_version += 1

    def on_hits(self, frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> None:
        poster = hit_poster(frame, hits, tracks)
        opened = through_outage(services.record_rule_hits, self.camera_id, hits, poster)
        self._start_clips(opened, frame, has_poster=poster is not None)

    def _start_clips(self, incident_ids: Sequence[int], frame: Frame, *, has_poster: bool) -> None:
        if self.clips is None:
            return
        for incident_id in incident_ids:
            services.clip_recording(incident_id)
            self.clips.start(incident_id, frame.time, poster=not has_poster)

    def _clips_need_time(self) -> bool:
        waiting = self.clips is not None and self.clips.awaiting_post_roll()
        return waiting and time.monotonic() < self.deadline + CLIP_GRACE_S

    def keep_going(self, stats: pipeline.LoopStats) -> bool:
        frame_time = self.last_frame_at.time if self.last_frame_at else None
        renewed = through_outage(
            services.renew_camera_lease, self.camera_id, self.owner, fps=stats.fps, last_frame_at=frame_time
        )
        if not renewed:
            log.warning("camera %s: lease lost, stopping", self.camera_id)
            self.lease_lost = True
            return False
        if time.monotonic() >= self.deadline and not self._clips_need_time():
            self.slice_done = True
            return False
        return True

    def on_health(self, health: Health, reason: str, failures: int) -> None:
        """The supervisor's view of the source, stored (and pushed live) by services."""
        if health is Health.ONLINE:
            services.camera_streaming(self.camera_id, self.owner)
        elif health is Health.DEGRADED:
            services.camera_degraded(self.camera_id, reason, self.owner)
        elif health is Health.OFFLINE:
            services.camera_offline(self.camera_id, reason, failures=failures, owner=self.owner)
            log.warning("camera %s offline (attempt %d failed): %s", self.camera_id, failures, reason)
        else:
            services.camera_source_failed(self.camera_id, self.owner, reason)
            log.error("camera %s failed, not retrying until it is saved again: %s", self.camera_id, reason)
            self.failed = True


def _owner(task_id: str | None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or 'eager'}"


def source_options(camera: Camera, *, realtime: bool) -> SourceOptions:
    # A blocked open or read must end well within the lease, else another worker takes the camera.
    limit_s = settings.ARGUS_CAMERA_LEASE_SECONDS / 3
    return SourceOptions(
        fps=camera.analysis_fps,
        loop=camera.loop,
        realtime=realtime,
        open_timeout_s=min(settings.ARGUS_SOURCE_OPEN_TIMEOUT_SECONDS, limit_s),
        read_timeout_s=min(camera.stall_timeout_s, limit_s),
        rtsp_transport=settings.ARGUS_RTSP_TRANSPORT,
        hwaccel=settings.ARGUS_HWACCEL,
        max_pixels=settings.ARGUS_MAX_SOURCE_PIXELS,
    )


def supervisor_config(camera: Camera) -> SupervisorConfig:
    try:
        is_file = local_path(camera.stream_url) is not None
    except UnsupportedSource:
        is_file = False  # the source itself reports it, as a failure
    return SupervisorConfig(
        analysis_fps=camera.analysis_fps,
        backoff_cap_s=settings.ARGUS_CAMERA_RECONNECT_MAX_SECONDS,
        restart_when_ended=not is_file,
    )


def analyse(camera: Camera, owner: str, *, realtime: bool = True, max_frames: int | None = None) -> DjangoSink:
    """Run the pipeline on a camera we hold the lease of, for one slice (or `max_frames`),
    reconnecting whenever the source drops."""
    options = source_options(camera, realtime=realtime)
    rules = rule_specs(camera)
    state = resume_state(camera.pk, rules) or pipeline.new_state(worker_detector(), rules)
    services.abandon_recording_clips(camera.pk)  # the lease is ours: no other worker records them
    clips = recorder_for(camera)
    sink = DjangoSink(camera, owner, slice_s=settings.ARGUS_CAMERA_SLICE_SECONDS, clips=clips)
    supervisor = Supervisor(
        lambda: iter_frames(camera.stream_url, options, tap=clips), supervisor_config(camera), sink, state.stats
    )
    frames = supervisor.frames()
    try:
        pipeline.run(itertools.islice(frames, max_frames), state, sink, handing_over=lambda: sink.slice_done)
    finally:
        frames.close()  # hang up on the source now, not when the generator is collected
        if clips is not None:  # clips cut short by a stop keep what was buffered
            clips.close()
    if sink.slice_done:
        hand_over_state(camera.pk, state)
    return sink


def _state_key(camera_id: int) -> str:
    return f"argus:camera-state:{camera_id}"


def hand_over_state(camera_id: int, state: pipeline.CameraState) -> None:
    """Keep tracks and open rule segments for the next slice, briefly: a camera nobody picks up
    soon starts afresh, and its segments then end by the rules' grace period."""
    ttl = settings.ARGUS_CAMERA_LEASE_SECONDS * 2
    redis.Redis.from_url(settings.REDIS_URL).set(_state_key(camera_id), pipeline.freeze(state), ex=ttl)


def resume_state(camera_id: int, rules: list[ZoneRuleSpec]) -> pipeline.CameraState | None:
    blob = redis.Redis.from_url(settings.REDIS_URL).getdel(_state_key(camera_id))
    if not blob:
        return None
    try:
        return pipeline.thaw(blob, worker_detector(), rules)
    except Exception:  # a state from an older version of the code: start afresh
        log.warning("camera %s: could not resume the previous slice's state", camera_id, exc_info=True)
        return None


@shared_task(bind=True, ignore_result=True, base=BoundedDeliveryTask)
def analyse_camera(self: object, camera_id: int, token: str | None = None) -> str:
    """Analyse one camera for a time slice while holding its lease, then hand it to the next task."""
    request = getattr(self, "request", None)
    owner = _owner(getattr(request, "id", None))
    if not services.acquire_camera_lease(camera_id, owner, token):
        return "busy"
    camera = Camera.objects.select_related("site").get(pk=camera_id)
    try:
        sink = analyse(camera, owner)
    finally:
        services.release_camera_lease(camera_id, owner)
    if sink.failed:  # stored as FAILED: the dispatcher leaves it alone until the camera is saved
        return "failed"
    if sink.lease_lost:
        return "lease lost"
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
    """Beat: flag cameras nobody analyses any more, then queue every enabled camera that nobody
    analyses and whose retry time has come."""
    services.sweep_unwatched_cameras()
    return sum(dispatch_camera(camera_id) for camera_id in services.cameras_due_for_dispatch())


# --- Recorded videos ------------------------------------------------------------------------


class VideoJobSink:
    """Writes a recorded video's rule hits and progress; waits out a database outage in place."""

    def __init__(self, job: VideoJob, owner: str, frames_total: int | None) -> None:
        self.job_id, self.camera_id, self.owner = job.pk, job.camera_id, owner
        self.frames_total = frames_total
        self.frames = 0
        self.hits = 0
        self.lease_lost = False

    def on_frame(self, frame: Frame, tracks: Sequence[Track]) -> None:
        self.frames += 1

    def on_hits(self, frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> None:
        through_outage(services.record_rule_hits, self.camera_id, hits, hit_poster(frame, hits, tracks))
        self.hits += len(hits)

    def keep_going(self, stats: pipeline.LoopStats) -> bool:
        mine = through_outage(
            video_jobs.renew, self.job_id, self.owner, frames_done=self.frames, frames_total=self.frames_total
        )
        self.lease_lost = not mine
        return mine


def recording_options(camera: Camera, fps: float) -> SourceOptions:
    options = source_options(camera, realtime=False)
    return SourceOptions(
        fps=fps,
        open_timeout_s=options.open_timeout_s,
        read_timeout_s=options.read_timeout_s,
        hwaccel=options.hwaccel,
        max_pixels=options.max_pixels,
    )


def job_rules(job: VideoJob) -> list[ZoneRuleSpec]:
    return rule_specs(job.camera)  # reads the camera, its site, zones and rules


def run_video_job(job: VideoJob, owner: str) -> VideoJobSink:
    """Analyse the whole file from its first frame; raises SourceError when it cannot be read."""
    rules = through_outage(job_rules, job)
    state = pipeline.new_state(worker_detector(), rules)
    sink = VideoJobSink(job, owner, estimated_frames(job.source, job.analysis_fps))
    frames = recording_frames(job.source, job.recorded_at, recording_options(job.camera, job.analysis_fps))
    try:
        pipeline.run(frames, state, sink)
    finally:
        frames.close()
    return sink


class VideoJobTask(BoundedDeliveryTask):
    """A job whose task keeps killing its worker is failed, with the reason, when Celery gives up on it."""

    def on_gave_up(self, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        reason = f"gave up after {settings.ARGUS_TASK_MAX_DELIVERIES} deliveries: its worker was lost each time"
        if isinstance(job_id, int):
            video_jobs.fail(job_id, reason)


@shared_task(bind=True, ignore_result=True, base=VideoJobTask)
def analyse_video(self: object, job_id: int) -> str:
    """Run one video job to the end, unless another worker has it or it is already finished."""
    request = getattr(self, "request", None)
    task_id = getattr(request, "id", None) or "eager"
    owner = _owner(task_id)
    # A run waits out a database outage in place from its first query on, as it does mid-video: a
    # task that died here would leave the job to the sweep (a re-run, or a re-send after a delay).
    job = through_outage(video_jobs.claim, job_id, owner, task_id)
    if job is None:
        return "not ours"
    log.info("video job %s: run %d of %s", job_id, job.attempts, job.source)
    try:
        sink = run_video_job(job, owner)
    except SourceError as exc:  # an unreadable file does not get better by retrying
        through_outage(video_jobs.fail, job_id, str(exc), owner=owner)
        log.warning("video job %s failed: %s", job_id, exc)
        return "failed"
    if sink.lease_lost:
        return "lease lost"
    through_outage(video_jobs.finish, job_id, owner, frames_done=sink.frames, hits=sink.hits)
    log.info("video job %s done: %d frames, %d rule hits", job_id, sink.frames, sink.hits)
    return "done"


@shared_task(ignore_result=True)
def sweep_video_jobs() -> int:
    """Beat: re-send lost video job tasks and re-queue the jobs of dead workers."""
    return len(video_jobs.sweep())
