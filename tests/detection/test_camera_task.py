"""The camera worker task on real footage and on cameras that cannot be reached (real database)."""

from __future__ import annotations

import random
import socket
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import av
import pytest
from django.utils import timezone

from detection import tasks
from monitor import services
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Event, Incident
from tests.detection.streaming import silent_server, wait_for


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_real_footage_produces_people_an_incident_and_live_activity(
    camera: Camera, rule: AlertRule, real_footage: Path, pushes: mock.Mock, media: Path
) -> None:
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(real_footage), analysis_fps=4)
    camera.refresh_from_db()
    assert services.acquire_camera_lease(camera.pk, "test-worker")

    tasks.analyse(camera, "test-worker", realtime=False, max_frames=40)  # 10 s of the plaza

    incident = Incident.objects.get()
    assert incident.rule == rule and incident.status == "open"
    assert incident.poster and incident.track_ids
    events = list(Event.objects.all())
    assert events and all(e.actor_class == "person" and e.score >= rule.min_confidence for e in events)
    assert all((e.segment_end - e.segment_start).total_seconds() >= rule.min_duration_s for e in events)
    assert all(0 <= v <= 1 for e in events for box in e.boxes for v in box[1:])
    activity = [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == "camera.activity"]
    assert any(len(a["actors"]) >= 2 for a in activity), "the plaza has several people in view"
    opened = [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == "incident.opened"]
    assert [o["incident_id"] for o in opened] == [incident.pk]
    camera.refresh_from_db()
    assert camera.health_state == "online" and camera.last_frame_at is not None
    assert snapshot_path(camera.pk).stat().st_size > 10_000


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_camera_is_retried_within_its_slice_shown_offline_and_handed_on(
    camera: Camera, pushes: mock.Mock, settings, counting_detector
) -> None:
    settings.ARGUS_CAMERA_SLICE_SECONDS = 3
    settings.ARGUS_CAMERA_RECONNECT_MAX_SECONDS = 0.5
    url = f"rtsp://127.0.0.1:{closed_port()}/stream"
    Camera.objects.filter(pk=camera.pk).update(stream_url=url)

    with mock.patch.object(tasks.analyse_camera, "delay") as next_slice:
        outcome = tasks.analyse_camera.apply(args=[camera.pk]).get()

    assert outcome == "slice done"
    camera.refresh_from_db()
    assert camera.health_state == "offline"
    assert url in camera.health_reason
    assert camera.failure_streak >= 3, "retried within the slice, not once per dispatch"
    health = [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == "camera.health"]
    assert health[-1]["state"] == "offline"
    next_slice.assert_called_once()  # the next slice goes on retrying
    assert next_slice.call_args.args[0] == camera.pk


@pytest.mark.django_db(transaction=True)
def test_a_server_that_accepts_and_says_nothing_puts_the_camera_offline_and_frees_the_worker(
    camera: Camera, pushes: mock.Mock, settings, counting_detector, fast_ingestion, start_worker
) -> None:
    settings.ARGUS_CAMERA_SLICE_SECONDS = 8
    with silent_server() as port, mock.patch.object(tasks.analyse_camera, "delay") as next_slice:
        Camera.objects.filter(pk=camera.pk).update(
            stream_url=f"rtsp://127.0.0.1:{port}/live", offline_incident_after_s=4
        )
        worker = start_worker(camera.pk)
        offline_after = wait_for(lambda: health_of(camera) == "offline", 30, "the camera to go offline")
        outcome = worker.join(timeout_s=8 + 3 + 5)  # the slice, one open timeout, slack

    assert offline_after < 3 + 2, f"offline after {offline_after:.1f} s (open timeout 3 s)"
    assert outcome == "slice done", "the worker slot is freed at the end of the slice"
    next_slice.assert_called_once()
    camera.refresh_from_db()
    assert "no answer within 3 s" in camera.health_reason
    incident = Incident.objects.get(kind="camera_offline")
    assert "no answer within 3 s" in incident.explanation["reason"]


def health_of(camera: Camera) -> str:
    return Camera.objects.values_list("health_state", flat=True).get(pk=camera.pk)


def truncated_video(folder: Path) -> Path:
    """A real Matroska file cut inside its header, as a copy interrupted early leaves it."""
    path = folder / "cut.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height = 64, 48
        for _ in range(5):
            container.mux(stream.encode(av.VideoFrame(64, 48, "yuv420p")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[:300])
    return path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty (0 bytes)"),
        (random.Random(3).randbytes(100_000), "is not a playable video file"),
        (None, "is not a playable video file"),  # truncated to a piece of its header
    ],
    ids=["zero-byte", "random-bytes", "truncated"],
)
@pytest.mark.django_db(transaction=True)
def test_a_file_that_can_never_play_fails_once_with_a_reason_and_is_not_dispatched_again(
    camera: Camera, pushes: mock.Mock, tmp_path: Path, counting_detector, content: bytes | None, reason: str
) -> None:
    path = truncated_video(tmp_path) if content is None else tmp_path / "gate.mp4"
    if content is not None:
        path.write_bytes(content)
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(path), loop=True)

    started = time.monotonic()
    outcome = tasks.analyse_camera.apply(args=[camera.pk]).get()

    assert outcome == "failed" and time.monotonic() - started < 5
    camera.refresh_from_db()
    assert camera.health_state == "failed" and reason in camera.health_reason
    assert camera.lease_owner == "" and counting_detector.seen == []
    assert Incident.objects.get().kind == "camera_offline"
    Camera.objects.filter(pk=camera.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    with mock.patch.object(tasks.analyse_camera, "delay") as delay:
        assert tasks.dispatch_cameras() == 0
    delay.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_a_camera_held_by_another_worker_is_left_alone(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "someone-else")
    assert tasks.analyse_camera.apply(args=[camera.pk]).get() == "busy"
    camera.refresh_from_db()
    assert camera.lease_owner == "someone-else"
