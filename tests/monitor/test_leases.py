"""Exactly one worker analyses a camera; a dead worker's camera is taken over when its lease expires."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from monitor import services
from monitor.models import Camera


def test_only_one_worker_gets_the_lease(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    assert not services.acquire_camera_lease(camera.pk, "worker-b")


def test_an_expired_lease_is_taken_over(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    Camera.objects.filter(pk=camera.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.acquire_camera_lease(camera.pk, "worker-b")
    assert not services.renew_camera_lease(camera.pk, "worker-a", fps=1.0, last_frame_at=None)


def test_a_queued_task_can_take_the_camera_it_was_dispatched_for(camera: Camera) -> None:
    token = services.claim_camera_for_dispatch(camera.pk)
    assert token is not None
    assert services.claim_camera_for_dispatch(camera.pk) is None  # no second task queued meanwhile
    assert not services.acquire_camera_lease(camera.pk, "stranger")
    assert services.acquire_camera_lease(camera.pk, "worker-a", token)


def test_disabled_cameras_are_not_dispatched(camera: Camera) -> None:
    Camera.objects.filter(pk=camera.pk).update(enabled=False)
    assert services.cameras_due_for_dispatch() == []
    assert services.claim_camera_for_dispatch(camera.pk) is None


def test_releasing_frees_the_camera_for_the_next_worker(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    services.release_camera_lease(camera.pk, "worker-a")
    assert services.acquire_camera_lease(camera.pk, "worker-b")


def test_a_worker_that_lost_its_camera_cannot_mark_it_offline(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    Camera.objects.filter(pk=camera.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.acquire_camera_lease(camera.pk, "worker-b")  # worker-a was stuck past its lease
    services.camera_streaming(camera.pk)  # worker-b has frames

    services.camera_failed(camera.pk, "worker-a", "the stream ended")  # worker-a wakes up and gives up

    camera.refresh_from_db()
    assert camera.lease_owner == "worker-b"
    assert (camera.health_state, camera.failure_streak, camera.next_attempt_at) == ("online", 0, None)


def test_a_worker_that_lost_its_camera_cannot_change_its_health(camera: Camera) -> None:
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    Camera.objects.filter(pk=camera.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.acquire_camera_lease(camera.pk, "worker-b")
    services.camera_streaming(camera.pk, "worker-b")

    services.camera_offline(camera.pk, "stale report", failures=3, owner="worker-a")
    services.camera_degraded(camera.pk, "stale report", "worker-a")

    camera.refresh_from_db()
    assert camera.health_state == "online" and camera.failure_streak == 0


def test_renewing_before_the_first_frame_keeps_the_last_frame_time(camera: Camera) -> None:
    seen = timezone.now() - timedelta(minutes=3)
    assert services.acquire_camera_lease(camera.pk, "worker-a")
    assert services.renew_camera_lease(camera.pk, "worker-a", fps=4.0, last_frame_at=seen)
    assert services.renew_camera_lease(camera.pk, "worker-a", fps=0.0, last_frame_at=None)
    camera.refresh_from_db()
    assert camera.last_frame_at == seen
