"""Camera health through services: the camera-offline incident (one per outage, resolved by the
system when frames flow again) and failed sources (never dispatched until the camera is saved)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from monitor import services
from monitor.models import AuditLog, Camera, Delivery, HealthState, Incident, NotificationChannel

pytestmark = pytest.mark.django_db(transaction=True)  # pushes go out on commit


@pytest.fixture
def pushes():
    with mock.patch("monitor.live.publish_now") as publish:
        yield publish


def pushed(pushes: mock.Mock, kind: str) -> list[dict]:
    return [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == kind]


def went_offline_ago(camera: Camera, seconds: float) -> None:
    Camera.objects.filter(pk=camera.pk).update(health_changed_at=timezone.now() - timedelta(seconds=seconds))


def test_an_outage_opens_one_high_severity_camera_offline_incident_once_it_lasts_long_enough(
    camera: Camera, pushes: mock.Mock
) -> None:
    reason = "cannot open rtsp://10.0.0.5/live: Connection refused"
    assert services.camera_offline(camera.pk, reason, failures=1) is None  # down for a moment only
    went_offline_ago(camera, 61)

    incident_id = services.camera_offline(camera.pk, reason, failures=5)
    assert services.camera_offline(camera.pk, reason, failures=6) is None, "no duplicate while it stays down"

    incident = Incident.objects.get()
    assert incident.pk == incident_id and incident.kind == "camera_offline" and incident.rule is None
    assert incident.severity == "high" and incident.status == "open"
    assert incident.title == "Camera offline: Gate cam"
    assert incident.explanation["reason"] == reason and incident.explanation["offline_for_s"] >= 61
    assert [p["incident_id"] for p in pushed(pushes, "incident.opened")] == [incident.pk]
    camera.refresh_from_db()
    assert camera.health_state == "offline" and camera.health_reason == reason and camera.failure_streak == 6


def test_frames_flowing_again_resolve_the_incident_with_a_note_and_an_audit_entry(
    camera: Camera, pushes: mock.Mock
) -> None:
    Camera.objects.filter(pk=camera.pk).update(offline_incident_after_s=30)
    services.camera_offline(camera.pk, "stalled: no data for 10 s", failures=1)
    went_offline_ago(camera, 42)
    incident_id = services.camera_offline(camera.pk, "stalled: no data for 10 s", failures=3)

    services.camera_streaming(camera.pk)

    incident = Incident.objects.get(pk=incident_id)
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert incident.notes == "back online after 42 s"
    audit = AuditLog.objects.get(action="incident.resolved")
    assert audit.actor is None and audit.details == {"note": "back online after 42 s", "by": "system"}
    assert pushed(pushes, "incident.updated")[-1]["status"] == "resolved"
    camera.refresh_from_db()
    assert camera.health_state == "online" and camera.reconnect_count == 1 and camera.failure_streak == 0


def test_an_incident_closed_by_an_operator_is_not_reopened_while_the_camera_stays_down(
    camera: Camera, operator: User, pushes: mock.Mock
) -> None:
    services.camera_offline(camera.pk, "Connection refused", failures=1)
    went_offline_ago(camera, 120)
    incident_id = services.camera_offline(camera.pk, "Connection refused", failures=2)
    assert incident_id is not None
    services.resolve_incident(incident_id, operator, "known: the switch is being replaced")

    assert services.camera_offline(camera.pk, "Connection refused", failures=3) is None
    assert Incident.objects.count() == 1


def test_a_new_reason_during_the_same_outage_keeps_its_start(camera: Camera, pushes: mock.Mock) -> None:
    services.camera_offline(camera.pk, "Connection refused", failures=1)
    went_offline_ago(camera, 30)
    services.camera_offline(camera.pk, "no answer within 10 s", failures=2)
    camera.refresh_from_db()
    assert camera.health_reason == "no answer within 10 s"
    assert timezone.now() - camera.health_changed_at >= timedelta(seconds=30)


def test_degraded_is_stored_and_pushed_with_its_reason(camera: Camera, pushes: mock.Mock) -> None:
    services.camera_degraded(camera.pk, "0.8 of 2 frames per second arrive for analysis")
    camera.refresh_from_db()
    assert camera.health_state == "degraded"
    assert pushed(pushes, "camera.health")[-1]["reason"] == "0.8 of 2 frames per second arrive for analysis"


CAMERA_FORM = {
    "name": "Gate cam",
    "analysis_fps": "2",
    "enabled": "on",
    "stall_timeout_s": "10",
    "offline_incident_after_s": "60",
    "pre_roll_s": "5",
    "post_roll_s": "5",
}


def test_a_failed_camera_is_never_dispatched_until_it_is_saved_in_the_admin(camera: Camera, pushes: mock.Mock) -> None:
    assert services.acquire_camera_lease(camera.pk, "w1")
    services.camera_source_failed(camera.pk, "w1", "the file is empty (0 bytes): /srv/gate.mp4")

    camera.refresh_from_db()
    assert camera.health_state == HealthState.FAILED and camera.lease_owner == ""
    assert Incident.objects.get().kind == "camera_offline", "nothing will retry it: raised at once"
    assert services.cameras_due_for_dispatch() == []
    assert services.claim_camera_for_dispatch(camera.pk) is None

    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    form = CAMERA_FORM | {"site": camera.site_id, "stream_url": camera.stream_url}
    response = client.post(f"/admin/monitor/camera/{camera.pk}/change/", form)

    assert response.status_code == 302
    camera.refresh_from_db()
    assert camera.health_state == HealthState.UNKNOWN and camera.failure_streak == 0
    assert services.cameras_due_for_dispatch() == [camera.pk]
    assert AuditLog.objects.filter(action="camera.retry", actor__username="root").exists()


def test_saving_a_healthy_camera_leaves_its_health_alone(camera: Camera, pushes: mock.Mock) -> None:
    services.camera_streaming(camera.pk)
    services.camera_saved(camera.pk, None)
    camera.refresh_from_db()
    assert camera.health_state == HealthState.ONLINE


def test_a_camera_no_worker_analyses_any_more_goes_offline_and_raises_its_incident(camera: Camera) -> None:
    now = timezone.now()
    Camera.objects.filter(pk=camera.pk).update(
        health_state="online", last_frame_at=now - timedelta(minutes=5), offline_incident_after_s=60
    )
    assert services.sweep_unwatched_cameras(now) == [camera.pk]
    camera.refresh_from_db()
    assert camera.health_state == "offline" and "no worker is analysing this camera" in camera.health_reason
    assert not Incident.objects.filter(kind="camera_offline").exists()  # not down long enough yet

    services.sweep_unwatched_cameras(now + timedelta(seconds=61))
    services.sweep_unwatched_cameras(now + timedelta(seconds=90))
    assert Incident.objects.filter(kind="camera_offline", camera=camera).count() == 1


def test_a_camera_with_a_live_worker_is_left_to_its_worker(camera: Camera) -> None:
    now = timezone.now()
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    Camera.objects.filter(pk=camera.pk).update(health_state="online", last_frame_at=now - timedelta(minutes=5))
    assert services.sweep_unwatched_cameras(now) == []
    camera.refresh_from_db()
    assert camera.health_state == "online"


def test_a_camera_offline_incident_is_queued_for_the_sites_camera_health_channels(
    camera: Camera, pushes: mock.Mock
) -> None:
    site = camera.site
    paged = NotificationChannel.objects.create(site=site, name="On call", kind="email", target="oncall@example.com")
    NotificationChannel.objects.create(
        site=site, name="Rule alerts only", kind="email", target="ops@example.com", camera_health=False
    )
    services.camera_offline(camera.pk, "no answer within 10 s", failures=1)
    went_offline_ago(camera, 61)

    incident_id = services.camera_offline(camera.pk, "no answer within 10 s", failures=2)

    deliveries = Delivery.objects.filter(incident_id=incident_id)
    assert [d.channel for d in deliveries] == [paged]
    assert deliveries.get().status == Delivery.Status.PENDING  # the relay sends it
