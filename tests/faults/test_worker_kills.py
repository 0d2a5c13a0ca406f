"""Workers SIGKILLed mid-clip, ten times during 200 clips of real footage: every clip is analysed,
no event is lost and none is doubled, and each recovery is timed. A clip that kills its worker
every time is given up after a bounded number of runs and marked failed.

Real Celery workers (subprocesses) on a private Redis and Postgres; this process plays beat.
Half the kills take a pool child (as the OOM killer does: the worker's main process sees it and
the broker hands the task out again); half take the whole worker, main process and all (as when
its machine dies: the job's lease runs out and the sweep re-queues it). A killed worker is
replaced, as a process supervisor would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detection import pipeline
from detection.detectors import load_detector
from detection.recorded import recording_frames
from detection.rules import RuleHit
from detection.tasks import recording_options, rule_specs
from detection.tracker import Track
from detection.types import Frame
from monitor import video_jobs
from monitor.models import AlertRule, Camera, Event, Incident, Site, VideoJob, Zone
from tests.conftest import WHOLE_FRAME
from tests.faults.conftest import JOB_LEASE_S, WorkerPool, fight_clips, wait_for

pytestmark = pytest.mark.slow

CLIPS = 200
KILLS = 10
ANALYSIS_FPS = 3.0
BASE = datetime(2026, 11, 1, tzinfo=UTC)
SWEEP_EVERY_S = 1.0
RUN_LIMIT_S = 600
KINDS = ("child", "worker")


def clip_site() -> Camera:
    site = Site.objects.create(name="Recorded footage")
    camera = Camera.objects.create(site=site, name="Archive", stream_url="/dev/null", enabled=False)
    zone = Zone.objects.create(camera=camera, name="Everywhere", points=WHOLE_FRAME)
    AlertRule.objects.create(
        site=site, zone=zone, name="Person seen", min_duration_s=0.3, min_confidence=0.3, cooldown_s=5
    )
    return camera


def queue_clips(camera: Camera, clips: Sequence[Path]) -> list[VideoJob]:
    # An hour apart on the camera's timeline: each clip's events and incidents are its own.
    return [
        video_jobs.create_video_job(camera.pk, str(p), recorded_at=BASE + timedelta(hours=i), analysis_fps=ANALYSIS_FPS)
        for i, p in enumerate(clips)
    ]


@dataclass
class Kill:
    job_id: int
    kind: str  # "child" or "worker"
    at: float
    attempts_before: int
    recovered_s: float | None = None  # until another run of the job started


class Collect:
    """A sink that keeps the keys of the events a run would write: (track id, segment start)."""

    def __init__(self) -> None:
        self.keys: set[tuple[str, datetime]] = set()

    def on_frame(self, frame: Frame, tracks: Sequence[Track]) -> None:
        pass

    def on_hits(self, frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> None:
        self.keys |= {(str(h.track_id), h.started_at) for h in hits}

    def keep_going(self, stats: pipeline.LoopStats) -> bool:
        return True


def expected_keys(job: VideoJob) -> set[tuple[str, datetime]]:
    """What one undisturbed run of this clip writes, computed here with the workers' own code."""
    sink = Collect()
    state = pipeline.new_state(load_detector("ssdlite"), rule_specs(job.camera))
    options = recording_options(job.camera, job.analysis_fps)
    pipeline.run(recording_frames(job.source, job.recorded_at, options), state, sink)
    return sink.keys


def stored_keys(job: VideoJob) -> list[tuple[str, datetime]]:
    window = (job.recorded_at, job.recorded_at + timedelta(minutes=30))
    rows = Event.objects.filter(camera=job.camera, segment_start__range=window)
    return list(rows.values_list("track_id", "segment_start"))


def running_mid_clip(pool: WorkerPool, spare: set[int]) -> VideoJob | None:
    """A job some live worker is analysing right now (claimed a moment ago, not finished), other
    than those in `spare`: each kill hits a different clip. A re-run is sent first, so on a slow
    machine the job just killed is often the one running, and killing it three times would give it
    up as a poison clip (the next test's case, not this one's)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=0.3)
    running = VideoJob.objects.filter(status=VideoJob.Status.RUNNING, started_at__lte=cutoff)
    for job in running.exclude(pk__in=spare):
        if pool.holder(job.lease_owner) is not None:
            return job
    return None


def kill(pool: WorkerPool, job: VideoJob, kind: str) -> Kill | None:
    worker = pool.holder(job.lease_owner)
    if worker is None:
        return None
    at = time.monotonic()
    if kind == "child":
        os.kill(int(job.lease_owner.split(":")[1]), signal.SIGKILL)
    else:
        worker.kill()
        pool.start()  # the supervisor brings a replacement up
    job.refresh_from_db()
    if job.status == VideoJob.Status.DONE:
        return None  # it finished in the same instant: not a kill mid-clip
    return Kill(job.pk, kind, at, job.attempts)


def test_ten_sigkills_during_200_clips_lose_and_double_nothing(pool: WorkerPool) -> None:
    pool.start()
    pool.start()
    camera = clip_site()
    started = time.monotonic()
    jobs = queue_clips(camera, fight_clips(CLIPS))
    # Kills spread over the run: one each time this many more clips have finished.
    kill_after = [int(CLIPS * (i + 0.5) / (KILLS + 1)) for i in range(KILLS)]
    kills: list[Kill] = []
    next_sweep = 0.0
    while True:
        now = time.monotonic()
        assert now - started < RUN_LIMIT_S, f"not done in {RUN_LIMIT_S} s\n{pool.tails()}"
        if now >= next_sweep:
            video_jobs.sweep()  # beat
            next_sweep = now + SWEEP_EVERY_S
        finished = VideoJob.objects.filter(status__in=["done", "failed"]).count()
        if finished == len(jobs):
            break
        due = len(kills) < KILLS and finished >= kill_after[len(kills)]
        spare = {k.job_id for k in kills}
        if due and (job := running_mid_clip(pool, spare)) and (landed := kill(pool, job, KINDS[len(kills) % 2])):
            kills.append(landed)
        for k in kills:
            if k.recovered_s is None:
                job = VideoJob.objects.get(pk=k.job_id)
                if job.attempts > k.attempts_before:
                    k.recovered_s = time.monotonic() - k.at
        time.sleep(0.05)
    elapsed = time.monotonic() - started

    failed = list(VideoJob.objects.filter(status="failed").values_list("pk", "error"))
    assert not failed, f"clips failed: {failed}\n{pool.tails()}"
    assert len(kills) == KILLS, f"only {len(kills)} kills landed mid-clip"
    assert all(k.recovered_s is not None for k in kills), kills

    # The oracle: the killed clips, and as many others picked at random, analysed once, here.
    killed_ids = {k.job_id for k in kills}
    others = random.Random(7).sample([j.pk for j in jobs if j.pk not in killed_ids], KILLS)
    lost = doubled = compared = 0
    for job in VideoJob.objects.filter(pk__in=killed_ids | set(others)).select_related("camera"):
        stored = stored_keys(job)
        expected = expected_keys(job)
        doubled += len(stored) - len(set(stored))
        lost += len(expected - set(stored))
        extra = set(stored) - expected
        assert not extra, f"job {job.pk} ({job.source}) wrote events no run produces: {sorted(extra)[:3]}"
        compared += len(expected)
    assert compared > 0, "the oracle found no events at all: the rule never fired"
    total_events = Event.objects.filter(camera=camera).count()
    keys = Event.objects.filter(camera=camera).values_list("track_id", "segment_start").distinct().count()
    unlinked = Event.objects.filter(camera=camera, incident__isnull=True).count()

    by_kind = {kind: [k.recovered_s for k in kills if k.kind == kind] for kind in ("child", "worker")}
    report = {
        "clips": CLIPS,
        "kills": len(kills),
        "elapsed_s": round(elapsed, 1),
        "runs": sum(VideoJob.objects.values_list("attempts", flat=True)),
        "events": total_events,
        "incidents": Incident.objects.filter(camera=camera).count(),
        "oracle_clips": len(killed_ids) + len(others),
        "oracle_events": compared,
        "lost": lost,
        "doubled": doubled,
        "recovery_s": {
            kind: {"p50": round(statistics.median(v), 2), "max": round(max(v), 2), "each": [round(x, 2) for x in v]}
            for kind, v in by_kind.items()
            if v
        },
        "job_lease_s": JOB_LEASE_S,
    }
    print("worker kills:", json.dumps(report))
    assert lost == 0 and doubled == 0 and keys == total_events, report
    assert unlinked == 0, "every event belongs to an incident"
    assert max(by_kind["child"]) < 10, "a lost pool child's task is handed out again at once"
    assert max(by_kind["worker"]) < JOB_LEASE_S + 3 * SWEEP_EVERY_S + 5, "a dead worker's job waits its lease out"


def test_a_clip_that_kills_its_worker_every_time_is_given_up_and_marked_failed(
    pool: WorkerPool, settings, tmp_path: Path
) -> None:
    settings.ARGUS_VIDEO_JOB_MAX_ATTEMPTS = 3
    pool.env["ARGUS_VIDEO_JOB_MAX_ATTEMPTS"] = "3"
    pool.start(include="tests.faults.poison")
    camera = clip_site()
    good, bad = fight_clips(2)
    poison = tmp_path / "poison-clip.mp4"
    poison.write_bytes(bad.read_bytes())
    started = time.monotonic()
    poisoned = video_jobs.create_video_job(camera.pk, str(poison), analysis_fps=ANALYSIS_FPS)
    after = video_jobs.create_video_job(camera.pk, str(good), analysis_fps=ANALYSIS_FPS)

    def finished() -> bool:
        video_jobs.sweep()
        return VideoJob.objects.filter(pk__in=[poisoned.pk, after.pk], status__in=["done", "failed"]).count() == 2

    wait_for(finished, 120, "the poison clip to be given up and the next clip analysed", pool)
    poisoned.refresh_from_db()
    after.refresh_from_db()
    print(f"poison clip: failed after {poisoned.attempts} runs in {time.monotonic() - started:.1f} s: {poisoned.error}")
    assert poisoned.status == "failed" and poisoned.attempts == 3
    assert "gave up after 3" in poisoned.error
    assert after.status == "done", after.error
    assert pool.alive(), "the worker's main process outlived every killed child"
