"""Recorded videos: queued, claimed under a lease, re-queued when their worker dies, given up when it
dies too often, and analysed into the same events however often they run (real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from detection import tasks
from monitor import db_outage, video_jobs
from monitor.models import AlertRule, Camera, Event, Incident, VideoJob

RECORDED_AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_sweep_history() -> None:
    """Each test's sweeps start without an earlier test's (see video_jobs._in_grace_after_gap)."""
    cache.delete_many([video_jobs.LAST_SWEEP_KEY, video_jobs.GRACE_KEY])


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\0" * 64)  # claiming never reads it
    return path


@pytest.fixture
def queued(camera: Camera, clip: Path) -> VideoJob:
    with mock.patch.object(tasks.analyse_video, "apply_async"):
        return video_jobs.create_video_job(camera.pk, str(clip), recorded_at=RECORDED_AT)


@pytest.mark.django_db
def test_a_job_is_created_queued_with_the_cameras_rate(
    camera: Camera, clip: Path, django_capture_on_commit_callbacks
) -> None:
    with (
        mock.patch.object(tasks.analyse_video, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = video_jobs.create_video_job(camera.pk, str(clip))
    assert job.status == VideoJob.Status.QUEUED and job.queued_at is not None
    assert job.analysis_fps == camera.analysis_fps and job.source == str(clip.resolve())
    send.assert_called_once_with((job.pk,), priority=video_jobs.NEW_JOB_PRIORITY)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/file.mp4", "no such file"),
        ("rtsp://cam/1", "not a video file path"),
        ("ftp://x/y", "unsupported URL scheme"),
    ],
)
def test_a_job_on_something_that_is_not_a_readable_file_is_refused(camera: Camera, source: str, message: str) -> None:
    with pytest.raises(video_jobs.VideoJobError, match=message):
        video_jobs.create_video_job(camera.pk, source)
    assert not VideoJob.objects.exists()


@pytest.mark.django_db
def test_a_job_on_an_unknown_camera_or_at_an_absurd_rate_is_refused(camera: Camera, clip: Path) -> None:
    with pytest.raises(video_jobs.VideoJobError, match="no camera"):
        video_jobs.create_video_job(camera.pk + 100, str(clip))
    with pytest.raises(video_jobs.VideoJobError, match="between 0.1 and 30"):
        video_jobs.create_video_job(camera.pk, str(clip), analysis_fps=120)


@pytest.mark.django_db
def test_one_worker_at_a_time_runs_a_job(queued: VideoJob) -> None:
    first = video_jobs.claim(queued.pk, "w1", "task-a")
    assert first is not None and first.attempts == 1 and first.status == VideoJob.Status.RUNNING
    assert video_jobs.claim(queued.pk, "w2", "task-b") is None, "a live lease is another worker's"
    assert video_jobs.renew(queued.pk, "w1", frames_done=5, frames_total=10)
    assert not video_jobs.renew(queued.pk, "w2", frames_done=5)
    assert video_jobs.finish(queued.pk, "w1", frames_done=10, hits=2)
    queued.refresh_from_db()
    assert (queued.status, queued.hits, queued.progress, queued.lease_owner) == ("done", 2, 1.0, "")
    assert video_jobs.claim(queued.pk, "w3", "task-c") is None, "a finished job is never run again"


@pytest.mark.django_db
def test_the_broker_redelivering_the_same_task_takes_the_job_over(queued: VideoJob) -> None:
    """Celery hands a task id out again only when the worker that had it was lost."""
    assert video_jobs.claim(queued.pk, "host:1:task-a", "task-a")
    again = video_jobs.claim(queued.pk, "host:2:task-a", "task-a")
    assert again is not None and again.attempts == 2 and again.lease_owner == "host:2:task-a"
    assert not video_jobs.renew(queued.pk, "host:1:task-a", frames_done=3), "the dead run lost it"


@pytest.mark.django_db
def test_the_sweep_requeues_a_job_whose_worker_stopped_renewing(
    queued: VideoJob, django_capture_on_commit_callbacks
) -> None:
    assert video_jobs.claim(queued.pk, "w1", "task-a")
    with (
        mock.patch.object(tasks.analyse_video, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert video_jobs.sweep() == [], "its lease is still live"
        VideoJob.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert video_jobs.sweep() == [queued.pk]
    send.assert_called_once_with((queued.pk,), priority=video_jobs.RERUN_PRIORITY)
    queued.refresh_from_db()
    assert queued.status == VideoJob.Status.QUEUED and queued.lease_owner == ""
    assert video_jobs.claim(queued.pk, "w2", "task-b") is not None


@pytest.mark.django_db
def test_the_sweep_resends_a_queued_job_whose_task_was_lost(
    queued: VideoJob, settings, django_capture_on_commit_callbacks
) -> None:
    settings.ARGUS_VIDEO_JOB_REQUEUE_SECONDS = 60
    with (
        mock.patch.object(tasks.analyse_video, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert video_jobs.sweep() == [], "sent a moment ago: still on its way"
        VideoJob.objects.filter(pk=queued.pk).update(queued_at=timezone.now() - timedelta(seconds=61))
        assert video_jobs.sweep() == [queued.pk]
    send.assert_called_once_with((queued.pk,), priority=video_jobs.NEW_JOB_PRIORITY)


@pytest.mark.django_db
def test_a_job_whose_worker_keeps_dying_is_failed_with_the_reason(queued: VideoJob, settings) -> None:
    settings.ARGUS_VIDEO_JOB_MAX_ATTEMPTS = 2
    expired = timezone.now() - timedelta(seconds=1)
    with mock.patch.object(tasks.analyse_video, "apply_async"):
        for owner in ("w1", "w2"):
            assert video_jobs.claim(queued.pk, owner, f"task-{owner}")
            VideoJob.objects.filter(pk=queued.pk).update(lease_expires_at=expired)
            video_jobs.sweep()
    queued.refresh_from_db()
    assert queued.status == VideoJob.Status.FAILED and queued.attempts == 2
    assert "gave up after 2 runs" in queued.error
    assert video_jobs.claim(queued.pk, "w3", "task-w3") is None


@pytest.mark.django_db
def test_celery_giving_up_on_the_task_fails_the_job(queued: VideoJob) -> None:
    tasks.analyse_video.on_gave_up((queued.pk,), {})
    queued.refresh_from_db()
    assert queued.status == VideoJob.Status.FAILED and "deliveries" in queued.error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_recording_is_analysed_into_events_and_a_rerun_never_doubles_them(
    camera: Camera, rule: AlertRule, real_footage: Path, settings
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.ARGUS_DETECTOR = "ssdlite"
    job = video_jobs.create_video_job(camera.pk, str(real_footage), recorded_at=RECORDED_AT, analysis_fps=1)
    job.refresh_from_db()
    assert job.status == VideoJob.Status.DONE, job.error
    assert job.frames_done > 50 and job.hits > 0 and job.attempts == 1
    events = list(Event.objects.filter(camera=camera).values_list("track_id", "segment_start", "segment_end"))
    assert events, "people walk through the plaza: the whole-frame rule fires"
    assert all(RECORDED_AT <= start <= end < RECORDED_AT + timedelta(minutes=3) for _, start, end in events)
    incidents = set(Incident.objects.values_list("pk", flat=True))

    VideoJob.objects.filter(pk=job.pk).update(status=VideoJob.Status.QUEUED)  # as if its worker died at the end
    assert tasks.analyse_video.apply(args=[job.pk]).get() == "done"
    again = list(Event.objects.filter(camera=camera).values_list("track_id", "segment_start", "segment_end"))
    assert sorted(again) == sorted(events), "the same footage gives the same events, written once"
    assert set(Incident.objects.values_list("pk", flat=True)) == incidents


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_recording_fails_its_job_with_the_reason(camera: Camera, tmp_path: Path, settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    job = video_jobs.create_video_job(camera.pk, str(garbage))
    job.refresh_from_db()
    assert job.status == VideoJob.Status.FAILED and "not a playable video file" in job.error


@pytest.mark.django_db(transaction=True)
def test_the_command_queues_and_reports_progress_until_done(
    camera: Camera, tmp_path: Path, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x01" * 4096)
    with pytest.raises(CommandError, match="1 job\\(s\\) failed"):
        call_command("analyse_video", str(garbage), camera=camera.pk, wait=True)
    out = capsys.readouterr().out
    assert "queued job" in out and "failed" in out
    with pytest.raises(CommandError, match="no such file"):
        call_command("analyse_video", "/nowhere.mp4", camera=camera.pk)
    with pytest.raises(CommandError, match="not an ISO date-time"):
        call_command("analyse_video", str(garbage), camera=camera.pk, recorded_at="yesterday")


@pytest.mark.django_db
def test_after_a_gap_in_sweeps_workers_get_a_lease_period_to_renew(queued: VideoJob, settings) -> None:
    """A database outage stops renewals and sweeps alike: expired leases then prove nothing."""
    settings.ARGUS_VIDEO_JOB_LEASE_SECONDS = 5
    assert video_jobs.claim(queued.pk, "w1", "task-a")
    long_ago = timezone.now().timestamp() - 31
    cache.set(video_jobs.LAST_SWEEP_KEY, long_ago)
    VideoJob.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=25))
    with mock.patch.object(tasks.analyse_video, "apply_async"):
        assert video_jobs.sweep() == [], "the first sweep after a 31 s gap waits"
        assert video_jobs.renew(queued.pk, "w1", frames_done=9), "the worker that waited the outage out goes on"
        cache.set(video_jobs.GRACE_KEY, timezone.now().timestamp() - 1)  # the grace period is over
        VideoJob.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert video_jobs.sweep() == [queued.pk], "after the grace period an expired lease means a dead worker"


@pytest.mark.django_db(transaction=True)  # the wait closes connections: no test transaction around it
def test_a_database_outage_as_a_run_starts_is_waited_out_in_place(
    queued: VideoJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres going away while a worker claims its job, or reads the camera's rules just after,
    is waited out as it is mid-video. Before, the task died there: the job was left to the sweep,
    which re-ran it (the fault suite's outage test counted 41 runs for 40 clips)."""
    monkeypatch.setattr(db_outage.time, "sleep", lambda seconds: None)
    failures: list[str] = []

    def down_once(fn):
        def call(*args, **kwargs):
            if fn.__name__ not in failures:
                failures.append(fn.__name__)
                raise OperationalError("terminating connection due to administrator command")
            return fn(*args, **kwargs)

        call.__name__ = fn.__name__
        return call

    monkeypatch.setattr(video_jobs, "claim", down_once(video_jobs.claim))
    monkeypatch.setattr(tasks, "rule_specs", down_once(tasks.rule_specs))
    # The clip is not a video: once the run has its rules it fails on reading it, with the reason.
    assert tasks.analyse_video.apply(args=[queued.pk]).get() == "failed"
    assert failures == ["claim", "rule_specs"]
    queued.refresh_from_db()
    assert queued.status == VideoJob.Status.FAILED and queued.attempts == 1, queued.error
