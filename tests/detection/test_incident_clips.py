"""Incident clips with Django: the camera task records them from real footage, and a full disk or a
failed database write costs the clip only, never the incident or the analysis (real database)."""

from __future__ import annotations

import errno
import itertools
from datetime import timedelta
from pathlib import Path
from unittest import mock

import av
import pytest
from django.db import DatabaseError
from django.utils import timezone

from detection import recording, tasks
from detection.pipeline import LoopStats
from detection.recording import ClipRecorder
from detection.sources import SourceOptions, iter_frames
from monitor import services
from monitor.clips import DjangoClipStore
from monitor.models import AlertRule, Camera, ClipStatus, Incident


@pytest.fixture
def footage_camera(camera: Camera, real_footage: Path) -> Camera:
    Camera.objects.filter(pk=camera.pk).update(
        stream_url=str(real_footage), analysis_fps=4, pre_roll_s=2, post_roll_s=2
    )
    camera.refresh_from_db()
    assert services.acquire_camera_lease(camera.pk, "test-worker")
    return camera


def no_space(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def clip_files(media: Path) -> list[Path]:
    return sorted(p for p in (media / "clips").rglob("*") if p.is_file())


def clip_updates(pushes: mock.Mock, incident: Incident) -> list[dict]:
    return [
        c.args[1]
        for c in pushes.call_args_list
        if c.args[1]["type"] == "incident.updated" and c.args[1]["incident_id"] == incident.pk
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_analysing_real_footage_records_a_playable_clip_of_pre_plus_post_roll(
    footage_camera: Camera, rule: AlertRule, pushes: mock.Mock, media: Path
) -> None:
    # The rule fires well after the first frame, so the whole pre-roll is in the buffer (a tracker
    # that confirms people sooner must not shorten the clip this test measures).
    AlertRule.objects.filter(pk=rule.pk).update(min_duration_s=2.5)
    tasks.analyse(footage_camera, "test-worker", realtime=False, max_frames=40)  # 10 s of the plaza

    incident = Incident.objects.get()
    assert incident.clip_status == ClipStatus.READY and incident.clip_error == ""
    assert incident.clip.name.startswith("clips/") and incident.clip.name.endswith(f"/incident-{incident.pk}.mp4")
    assert incident.poster.name.startswith("posters/"), "the poster with the actors boxed is kept"
    with av.open(incident.clip.path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (768, 576) and stream.average_rate == 10  # vtest.avi's own
        assert float(stream.duration * stream.time_base) == pytest.approx(4.0, rel=0.1)
        assert len(list(container.decode(stream))) == 40
    # The trigger frame comes at least min_duration_s after the track started.
    assert incident.started_at - timedelta(seconds=2) <= incident.clip_started_at <= incident.last_seen_at
    assert len(clip_updates(pushes, incident)) >= 2, "recording, then ready, pushed live"
    assert clip_files(media) == [Path(incident.clip.path)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_full_disk_fails_the_clip_but_not_the_incident_or_the_analysis(
    footage_camera: Camera, rule: AlertRule, pushes: mock.Mock, media: Path, monkeypatch
) -> None:
    monkeypatch.setattr(recording.os, "fsync", no_space)

    sink = tasks.analyse(footage_camera, "test-worker", realtime=False, max_frames=40)

    incident = Incident.objects.get()
    assert incident.status == Incident.Status.OPEN and incident.events.exists()
    assert incident.clip_status == ClipStatus.FAILED and not incident.clip
    assert incident.clip_error == "could not write the clip: No space left on device"
    assert sink.last_frame_at is not None and sink.last_frame_at.index == 39, "analysis went on to the end"
    assert clip_files(media) == [], "no half-written or temporary file is left"


def record_footage(url: Path, recorder: ClipRecorder, incident: Incident, *, poster: bool = False) -> None:
    """Play 4 s of real footage through the recorder alone (no detector); the incident opens at 2 s."""
    source = iter_frames(str(url), SourceOptions(fps=10, realtime=False), tap=recorder)
    for n, frame in enumerate(itertools.islice(source, 40)):
        if n == 20:
            recorder.start(incident.pk, frame.time, poster=poster)
    recorder.close(timeout_s=60)


@pytest.fixture
def incident(camera: Camera, rule: AlertRule) -> Incident:
    now = timezone.now()
    return Incident.objects.create(
        site=camera.site, camera=camera, rule=rule, title="t", started_at=now, last_seen_at=now
    )


@pytest.mark.django_db(transaction=True)
def test_a_clip_the_database_refuses_is_deleted_and_marked_failed(
    incident: Incident, real_footage: Path, media: Path, pushes: mock.Mock, monkeypatch
) -> None:
    monkeypatch.setattr(services, "attach_clip", mock.Mock(side_effect=DatabaseError("disk I/O error")))
    recorder = ClipRecorder(DjangoClipStore(), pre_roll_s=1, post_roll_s=1)

    record_footage(real_footage, recorder, incident)

    incident.refresh_from_db()
    assert incident.clip_status == ClipStatus.FAILED and not incident.clip
    assert incident.clip_error == "the clip was encoded but could not be recorded"
    assert clip_files(media) == []


@pytest.mark.django_db(transaction=True)
def test_a_clip_of_video_never_buffered_is_marked_missing(incident: Incident, media: Path, pushes: mock.Mock) -> None:
    recorder = ClipRecorder(DjangoClipStore(), pre_roll_s=1, post_roll_s=1)
    recorder.start(incident.pk, timezone.now())
    recorder.close()

    incident.refresh_from_db()
    assert incident.clip_status == ClipStatus.MISSING
    assert incident.clip_error == "no video of the clip's time window was buffered"
    assert [u["incident_id"] for u in clip_updates(pushes, incident)] == [incident.pk]


@pytest.mark.django_db(transaction=True)
def test_an_incident_without_a_poster_gets_one_from_its_clip(
    incident: Incident, real_footage: Path, media: Path, pushes: mock.Mock
) -> None:
    recorder = ClipRecorder(DjangoClipStore(), pre_roll_s=1, post_roll_s=1)

    record_footage(real_footage, recorder, incident, poster=True)

    incident.refresh_from_db()
    assert incident.clip_status == ClipStatus.READY
    assert incident.poster.name == incident.clip.name.replace(".mp4", ".jpg")
    assert Path(incident.poster.path).read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.django_db
def test_a_slice_runs_on_until_its_clips_have_their_post_roll(camera: Camera, pushes: mock.Mock) -> None:
    assert services.acquire_camera_lease(camera.pk, "test-worker")
    recorder = ClipRecorder(mock.Mock(), pre_roll_s=1, post_roll_s=1)
    sink = tasks.DjangoSink(camera, "test-worker", slice_s=0, clips=recorder)
    recorder.start(1, timezone.now())

    assert sink.keep_going(LoopStats()) and not sink.slice_done

    recorder.close()
    assert not sink.keep_going(LoopStats()) and sink.slice_done


@pytest.mark.django_db
def test_clips_left_recording_by_a_dead_worker_are_marked_missing_when_the_camera_is_taken_up(
    incident: Incident, pushes: mock.Mock
) -> None:
    Incident.objects.filter(pk=incident.pk).update(clip_status=ClipStatus.RECORDING)

    assert services.abandon_recording_clips(incident.camera_id) == 1

    incident.refresh_from_db()
    assert incident.clip_status == ClipStatus.MISSING
    assert incident.clip_error == "the worker stopped before the clip was written"
