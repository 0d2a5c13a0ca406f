"""A camera behind a real RTSP server (Debian's rtsp-server-perl, fed real footage by ffmpeg) that
goes away mid-stream and comes back: the worker rides it out without being restarted."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest

from monitor.models import AuditLog, Camera, Incident
from tests.detection.conftest import CountingDetector, Worker
from tests.detection.streaming import PerlRtspServer, needs, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def health_of(camera: Camera) -> str:
    return Camera.objects.values_list("health_state", flat=True).get(pk=camera.pk)


def open_offline_incident(camera: Camera) -> Incident | None:
    return Incident.objects.filter(camera=camera, kind="camera_offline", status="open").first()


@pytest.fixture
def pushes():
    with mock.patch("monitor.live.publish_now") as publish:
        yield publish


@pytest.mark.django_db(transaction=True)
def test_a_camera_rides_out_a_server_restart_raising_and_resolving_an_offline_incident(
    camera: Camera,
    real_footage: Path,
    tmp_path: Path,
    pushes: mock.Mock,
    counting_detector: CountingDetector,
    fast_ingestion: None,
    start_worker: Callable[[int], Worker],
) -> None:
    needs("rtsp-server-perl", "ffmpeg")
    with PerlRtspServer(real_footage, tmp_path) as server:
        server.start()
        server.wait_streaming()
        Camera.objects.filter(pk=camera.pk).update(
            stream_url=server.url, analysis_fps=5, stall_timeout_s=2, offline_incident_after_s=2
        )
        worker = start_worker(camera.pk)
        wait_for(lambda: len(counting_detector.seen) >= 5, 20, "the first analysed frames")
        assert health_of(camera) == "online"

        server.stop()
        offline_after = wait_for(lambda: health_of(camera) == "offline", 15, "the camera to go offline")
        wait_for(lambda: open_offline_incident(camera), 15, "the camera-offline incident")
        incident = open_offline_incident(camera)
        assert incident is not None and incident.severity == "high"

        server.start()
        server.wait_streaming()
        returned = time.monotonic()
        back_after = wait_for(lambda: health_of(camera) == "online", 10, "the camera to come back")
        wait_for(lambda: counting_detector.frames_since(returned) >= 10, 10, "analysis to resume")

        Camera.objects.filter(pk=camera.pk).update(enabled=False)  # the worker stops at its next renewal
        assert worker.join(timeout_s=15) == "lease lost"

    print(f"offline {offline_after:.1f} s after the server stopped; back {back_after:.1f} s after it returned")
    assert offline_after < 2 + 3, "within the stall timeout (2 s) plus slack"
    assert back_after < 5.0, f"back {back_after:.1f} s after the server's return"
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.notes.startswith("back online after ")
    assert AuditLog.objects.filter(action="incident.resolved", target_id=str(incident.pk), actor=None).exists()
    camera.refresh_from_db()
    assert camera.reconnect_count == 1
    opened = [c.args[1] for c in pushes.call_args_list if c.args[1]["type"] == "incident.opened"]
    assert [o["incident_id"] for o in opened] == [incident.pk], "pushed live, once"
