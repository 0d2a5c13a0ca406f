"""Recorded videos analysed once: queueing, the run lease, attempts, and giving up.

A job's task may be lost (Redis restarted before a worker took it) or its worker may die mid-run
(SIGKILL, OOM, a crashed machine). The database, not the broker, is the record: the beat sweep
re-sends queued jobs nobody took and re-queues running jobs whose lease expired, and a job whose
worker died `ARGUS_VIDEO_JOB_MAX_ATTEMPTS` times is failed rather than retried forever. Re-runs are
harmless: a run starts from the first frame, and events are written idempotently.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detection.stream_urls import UnsupportedSource, local_path
from monitor.models import Camera, VideoJob

log = logging.getLogger(__name__)

Status = VideoJob.Status


class VideoJobError(ValueError):
    """A job that cannot be created as asked (the message says why)."""


def _source_path(source: str) -> str:
    try:
        path = local_path(source)
    except UnsupportedSource as exc:
        raise VideoJobError(str(exc)) from exc
    if path is None:
        raise VideoJobError(f"{source} is not a video file path (live streams are cameras, not video jobs)")
    if not path.is_file():
        raise VideoJobError(f"no such file: {path}")
    return str(path.resolve())


@transaction.atomic
def create_video_job(
    camera_id: int,
    source: str,
    *,
    recorded_at: datetime | None = None,
    analysis_fps: float | None = None,
    user: Any = None,
) -> VideoJob:
    """Queue `source` for analysis against the zones and rules of camera `camera_id`."""
    camera = Camera.objects.filter(pk=camera_id).first()
    if camera is None:
        raise VideoJobError(f"no camera with id {camera_id}")
    fps = analysis_fps if analysis_fps is not None else camera.analysis_fps
    if not 0.1 <= fps <= 30.0:
        raise VideoJobError(f"analysis fps must be between 0.1 and 30, not {fps:g}")
    job = VideoJob.objects.create(
        camera=camera,
        source=_source_path(source),
        recorded_at=recorded_at or timezone.now(),
        analysis_fps=fps,
        created_by=user if getattr(user, "pk", None) else None,
        queued_at=timezone.now(),
    )
    _enqueue(job.pk)
    return job


# Redis priorities, 0 first: live cameras (sent without one) before a re-run of a job cut short,
# before a job that has not started. A re-run never waits behind the whole backlog of new jobs.
RERUN_PRIORITY = 3
NEW_JOB_PRIORITY = 6


def _enqueue(job_id: int, priority: int = NEW_JOB_PRIORITY) -> None:
    from detection.tasks import analyse_video  # the task module needs the worker's imports

    transaction.on_commit(lambda: analyse_video.apply_async((job_id,), priority=priority))


def _send(job_id: int, priority: int) -> None:
    VideoJob.objects.filter(pk=job_id).update(queued_at=timezone.now())
    _enqueue(job_id, priority)


def _claimable(now: datetime, task_id: str) -> Q:
    """Queued; or running under a lease that expired (its worker died); or running under this very
    task id, which the broker hands out again only when the worker that had it was lost."""
    running = Q(status=Status.RUNNING)
    return (
        Q(status=Status.QUEUED)
        | (running & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)))
        | (running & Q(lease_task=task_id) & ~Q(lease_task=""))
    )


@transaction.atomic
def claim(job_id: int, owner: str, task_id: str) -> VideoJob | None:
    """Start a run of the job for `owner`; None when it is not ours to run (done, failed, another
    worker has it) or when it has used up its attempts (then it is failed, with the reason)."""
    now = timezone.now()
    job = VideoJob.objects.select_for_update().filter(_claimable(now, task_id), pk=job_id).first()
    if job is None:
        return None
    if job.attempts >= settings.ARGUS_VIDEO_JOB_MAX_ATTEMPTS:
        _give_up(job, now)
        return None
    job.status, job.attempts, job.started_at = Status.RUNNING, job.attempts + 1, now
    job.lease_owner, job.lease_task = owner, task_id
    job.lease_expires_at = now + timedelta(seconds=settings.ARGUS_VIDEO_JOB_LEASE_SECONDS)
    job.frames_done, job.error = 0, ""
    job.save()
    return job


def _give_up(job: VideoJob, now: datetime) -> None:
    job.status, job.finished_at = Status.FAILED, now
    job.lease_owner, job.lease_task, job.lease_expires_at = "", "", None
    job.error = f"gave up after {job.attempts} runs: the worker analysing it stopped without finishing each time"
    job.save()
    log.error("video job %s: %s", job.pk, job.error)


def renew(job_id: int, owner: str, *, frames_done: int, frames_total: int | None = None) -> bool:
    """Extend our lease and record progress; False when the job is no longer ours."""
    fields: dict[str, Any] = {
        "frames_done": frames_done,
        "lease_expires_at": timezone.now() + timedelta(seconds=settings.ARGUS_VIDEO_JOB_LEASE_SECONDS),
    }
    if frames_total is not None:
        fields["frames_total"] = frames_total
    with transaction.atomic():
        updated = VideoJob.objects.filter(pk=job_id, lease_owner=owner, status=Status.RUNNING).update(**fields)
    return updated == 1


@transaction.atomic
def finish(job_id: int, owner: str, *, frames_done: int, hits: int) -> bool:
    updated = VideoJob.objects.filter(pk=job_id, lease_owner=owner, status=Status.RUNNING).update(
        status=Status.DONE,
        frames_done=frames_done,
        frames_total=frames_done,
        hits=hits,
        finished_at=timezone.now(),
        lease_owner="",
        lease_task="",
        lease_expires_at=None,
    )
    return updated == 1


@transaction.atomic
def fail(job_id: int, reason: str, *, owner: str | None = None) -> bool:
    """Failed for good (an unreadable file); with `owner`, only if that run still holds the job."""
    jobs = VideoJob.objects.filter(pk=job_id).exclude(status=Status.DONE)
    if owner is not None:
        jobs = jobs.filter(lease_owner=owner)
    updated = jobs.update(
        status=Status.FAILED,
        error=reason[:500],
        finished_at=timezone.now(),
        lease_owner="",
        lease_task="",
        lease_expires_at=None,
    )
    return updated == 1


LAST_SWEEP_KEY = "argus:video-jobs:last-sweep"
GRACE_KEY = "argus:video-jobs:grace-until"


def _in_grace_after_gap(now: datetime) -> bool:
    """Leases also run out while nobody could renew them (the database was away, or beat was
    down): after such a gap, workers get one lease period to renew before they count as dead."""
    lease_s = settings.ARGUS_VIDEO_JOB_LEASE_SECONDS
    stamp = now.timestamp()
    try:
        last, grace_until = cache.get(LAST_SWEEP_KEY), cache.get(GRACE_KEY)
        if last is not None and stamp - last > lease_s:
            grace_until = stamp + lease_s + 2
            cache.set(GRACE_KEY, grace_until, timeout=lease_s * 4)
    except Exception as exc:  # no cache, no memory of gaps: judge leases as they stand
        log.warning("video job sweep: cannot read its cache (%s)", exc)
        return False
    return grace_until is not None and stamp < grace_until


def sweep() -> list[int]:
    """Beat: re-send jobs whose task was lost and re-queue jobs whose worker died; returns the ids sent."""
    now = timezone.now()
    stale_queue = now - timedelta(seconds=settings.ARGUS_VIDEO_JOB_REQUEUE_SECONDS)
    sent = []
    grace = _in_grace_after_gap(now)
    with transaction.atomic():
        dead = VideoJob.objects.select_for_update(skip_locked=True).filter(
            status=Status.RUNNING, lease_expires_at__lte=now
        )
        if grace:
            dead = dead.none()
        for job in dead:
            if job.attempts >= settings.ARGUS_VIDEO_JOB_MAX_ATTEMPTS:
                _give_up(job, now)
                continue
            log.warning("video job %s: its worker %s stopped renewing; re-queued", job.pk, job.lease_owner)
            VideoJob.objects.filter(pk=job.pk).update(
                status=Status.QUEUED, lease_owner="", lease_task="", lease_expires_at=None
            )
            sent.append(job.pk)
        lost = VideoJob.objects.select_for_update(skip_locked=True).filter(
            Q(queued_at__isnull=True) | Q(queued_at__lte=stale_queue), status=Status.QUEUED
        )
        reruns = list(sent)
        sent += [job.pk for job in lost if job.pk not in sent]
        for job_id in sent:
            _send(job_id, RERUN_PRIORITY if job_id in reruns else NEW_JOB_PRIORITY)
    _remember_sweep(now)
    return sent


def _remember_sweep(now: datetime) -> None:
    """Only a sweep that reached the database counts: one that failed leaves the gap open."""
    try:
        cache.set(LAST_SWEEP_KEY, now.timestamp(), timeout=None)
    except Exception as exc:
        log.warning("video job sweep: cannot write its cache (%s)", exc)
