"""A really full media disk (a small tmpfs, filled up) never stops detection, incident creation or
notification: the incident is opened and notified, and it records that its clip and poster are
missing. Retention then frees that disk (old media placed on it before it filled), and the next
incident gets its poster again (real database, real footage; the detector is scripted, so the
incident opens at a known frame and the test stays fast on a loaded machine)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from detection import tasks
from detection.types import Detection
from monitor import services
from monitor.models import AlertRule, Camera, ClipStatus, Delivery, HealthState, Incident, NotificationChannel
from monitor.notify import relay
from monitor.retention import apply_retention
from tests.conftest import real_footage_path

KIB = 1024
DISK = "2m"  # tmpfs size: room for the old media below, then filled to the last block
# Frames flow; degraded only says that a loaded machine analysed fewer frames a second than asked.
ANALYSING = (HealthState.ONLINE, HealthState.DEGRADED)


@pytest.fixture
def footage() -> Path:
    path = real_footage_path()
    if path is None:
        pytest.fail("cannot run the camera on a full disk without real footage: run `make footage`")
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "media"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot inject a full disk: mounting a small tmpfs failed (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> None:
    with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
        filler.write(b"\0" * 8 * 1024 * KIB)  # stops at ENOSPC
    if shutil.disk_usage(mount).free > 4 * KIB:
        pytest.fail(f"cannot inject a full disk: {shutil.disk_usage(mount).free} bytes are still free on {mount}")


def old_incident(camera: Camera, rule: AlertRule, mount: Path, name: str, days: int, size: int) -> Incident:
    """An incident seen `days` ago whose clip and poster (`size` bytes in all) lie on the small disk."""
    seen = timezone.now() - timedelta(days=days)
    for folder, part in (("clips", 0.8), ("posters", 0.2)):
        (mount / folder).mkdir(exist_ok=True)
        (mount / folder / f"{name}.{'mp4' if folder == 'clips' else 'jpg'}").write_bytes(b"\1" * int(size * part))
    return Incident.objects.create(
        site=camera.site,
        camera=camera,
        rule=rule,
        title=f"old {name}",
        started_at=seen,
        last_seen_at=seen,
        status=Incident.Status.RESOLVED,
        clip=f"clips/{name}.mp4",
        poster=f"posters/{name}.jpg",
        clip_status=ClipStatus.READY,
        clip_started_at=seen,
    )


class StandingPerson:
    """Sees one person standing in the middle of every frame."""

    name = "standing-person"

    def detect(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        return [Detection(box=(0.4 * width, 0.3 * height, 0.5 * width, 0.7 * height), score=0.9)]


def analyse(camera: Camera, frames: int) -> tasks.DjangoSink:
    assert services.acquire_camera_lease(camera.pk, "test-worker")
    camera.refresh_from_db()
    try:
        with (
            mock.patch("monitor.live.publish_now"),
            mock.patch.object(tasks, "publish_now"),
            mock.patch.object(tasks, "worker_detector", return_value=StandingPerson()),
        ):
            return tasks.analyse(camera, "test-worker", realtime=False, max_frames=frames)
    finally:
        services.release_camera_lease(camera.pk, "test-worker")


def files_on(mount: Path) -> list[str]:
    return sorted(str(p.relative_to(mount)) for p in mount.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_full_disk_costs_the_clip_but_never_the_incident_its_notification_or_the_analysis(
    camera: Camera, rule: AlertRule, owner: User, footage: Path, small_disk: Path, settings: Any, mailoutbox: list
) -> None:
    settings.MEDIA_ROOT = small_disk
    settings.ARGUS_MEDIA_MIN_FREE_MB = 1
    channel = NotificationChannel.objects.create(site=camera.site, name="Ops", kind="email", target="ops@example.com")
    rule.channels.add(channel)
    expired = old_incident(camera, rule, small_disk, "expired", days=60, size=300 * KIB)
    oldest = old_incident(camera, rule, small_disk, "oldest", days=2, size=900 * KIB)
    fill(small_disk)
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(footage), analysis_fps=4, pre_roll_s=1, post_roll_s=1)

    # The disk is full: the incident opens without its clip and poster, and analysis goes on.
    sink = analyse(camera, frames=20)  # opens at 1 s; the clip is written (and fails) after its 1 s post-roll
    incident = Incident.objects.get(kind="rule", title__startswith=rule.name)
    assert incident.status == "open" and incident.events.exists()
    assert incident.clip_status in (ClipStatus.FAILED, ClipStatus.MISSING)
    assert "No space left on device" in incident.clip_error
    assert not incident.poster
    camera.refresh_from_db()
    assert camera.health_state in ANALYSING
    assert sink.last_frame_at is not None and sink.last_frame_at.index == 19, "every frame was analysed"
    assert files_on(small_disk) == ["clips/expired.mp4", "clips/oldest.mp4", "filler"] + [
        "posters/expired.jpg",
        "posters/oldest.jpg",
    ], "no half-written files left"

    # Its notification goes out all the same (an email needs no disk).
    relay.run_once()
    delivery = Delivery.objects.get(incident=incident, channel=channel)
    assert delivery.status == Delivery.Status.DELIVERED, delivery.last_error
    (message,) = mailoutbox
    assert incident.title in message.subject

    # Retention frees the disk: expired media by age, then the oldest while the disk is too full.
    report = apply_retention()
    removed = {r.incident_id: r.reason for r in report.removed}
    assert removed == {
        expired.pk: "removed by retention after 30 days",
        oldest.pk: "removed because the media disk had less than 1 MB free",
    }
    assert files_on(small_disk) == ["filler"]
    assert shutil.disk_usage(small_disk).free >= 1024 * KIB

    # The next incident has its poster again.
    services.resolve_incident(incident.pk, owner, "seen")
    analyse(camera, frames=12)  # the poster is saved when the incident opens
    following = Incident.objects.filter(kind="rule", title__startswith=rule.name).exclude(pk=incident.pk).get()
    poster = Path(following.poster.path)
    assert poster.is_relative_to(small_disk) and poster.stat().st_size > 0
    camera.refresh_from_db()
    assert camera.health_state in ANALYSING
