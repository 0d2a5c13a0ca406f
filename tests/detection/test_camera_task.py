"""The camera worker task on real footage and on cameras that cannot be reached (real database)."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from detection import tasks
from monitor import services
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Event, Incident


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pushes():
    with mock.patch("monitor.live.publish_now") as publish, mock.patch.object(tasks, "publish_now", publish):
        yield publish


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


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
def test_an_unreachable_camera_is_shown_offline_with_the_reason_and_retried(camera: Camera, pushes: mock.Mock) -> None:
    url = f"rtsp://127.0.0.1:{closed_port()}/stream"
    Camera.objects.filter(pk=camera.pk).update(stream_url=url)

    outcome = tasks.analyse_camera.apply(args=[camera.pk]).get()

    assert outcome == "failed"
    camera.refresh_from_db()
    assert camera.health_state == "offline"
    assert url in camera.health_reason
    assert camera.lease_owner == ""
    assert camera.next_attempt_at is not None and camera.next_attempt_at > timezone.now()
    health = [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == "camera.health"]
    assert health[-1]["state"] == "offline"

    Camera.objects.filter(pk=camera.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    with mock.patch.object(tasks.analyse_camera, "delay") as delay:
        assert tasks.dispatch_cameras() == 1
    delay.assert_called_once()
    assert delay.call_args.args[0] == camera.pk


@pytest.mark.django_db(transaction=True)
def test_a_camera_held_by_another_worker_is_left_alone(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "someone-else")
    assert tasks.analyse_camera.apply(args=[camera.pk]).get() == "busy"
    camera.refresh_from_db()
    assert camera.lease_owner == "someone-else"
