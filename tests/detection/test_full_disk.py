"""A really full media disk (a tiny tmpfs, filled up) never stops detection or incident creation:
the incident is opened, and it records that its clip and poster are missing (real database)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from detection import tasks
from monitor import services
from monitor.models import AlertRule, Camera, ClipStatus, Incident
from tests.conftest import require_or_skip


@pytest.fixture
def full_media(settings, tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "media"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        require_or_skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
            filler.write(b"\0" * 1024 * 1024)  # stops at ENOSPC: the disk is now full
        settings.MEDIA_ROOT = mount
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_full_disk_costs_the_clip_but_never_the_incident_or_the_analysis(
    camera: Camera, rule: AlertRule, real_footage: Path, full_media: Path
) -> None:
    Camera.objects.filter(pk=camera.pk).update(
        stream_url=str(real_footage), analysis_fps=4, pre_roll_s=1, post_roll_s=1
    )
    camera.refresh_from_db()
    assert services.acquire_camera_lease(camera.pk, "test-worker")

    with mock.patch("monitor.live.publish_now"), mock.patch.object(tasks, "publish_now"):
        tasks.analyse(camera, "test-worker", realtime=False, max_frames=40)

    incident = Incident.objects.get(kind="rule")
    assert incident.status == "open" and incident.events.exists()
    assert incident.clip_status in (ClipStatus.FAILED, ClipStatus.MISSING)
    assert "No space left on device" in incident.clip_error
    assert not incident.poster
    camera.refresh_from_db()
    assert camera.health_state == "online" and camera.last_frame_at is not None
    assert [p.name for p in full_media.rglob("*") if p.is_file()] == ["filler"], "no half-written files left"
