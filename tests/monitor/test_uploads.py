"""Uploading a video file for analysis: type- and size-checked, stored, and readable by the worker."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import av
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from detection.sources import SourceOptions, iter_frames
from monitor.models import Camera, Site


@pytest.fixture
def admin_client(db: None, settings, tmp_path: Path) -> Client:
    settings.MEDIA_ROOT = tmp_path / "media"
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    return client


def small_mp4(path: Path, frames: int = 20) -> bytes:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), i * 10, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path.read_bytes()


def camera_form(site: Site, **extra: object) -> dict[str, object]:
    form: dict[str, object] = {"site": site.pk, "name": "Uploaded", "analysis_fps": "5", "enabled": "on"}
    form |= {"stall_timeout_s": "10", "offline_incident_after_s": "60", "pre_roll_s": "5", "post_roll_s": "5"}
    return form | extra


def test_an_uploaded_video_is_stored_and_analysable(admin_client: Client, site: Site, tmp_path: Path) -> None:
    video = SimpleUploadedFile("gate recording.mp4", small_mp4(tmp_path / "v.mp4"), content_type="video/mp4")
    response = admin_client.post("/admin/monitor/camera/add/", camera_form(site, stream_url="", upload=video))
    assert response.status_code == 302, response.content.decode()[:2000]
    camera = Camera.objects.get()
    stored = Path(camera.stream_url)
    assert stored.is_file() and stored.parent.name == f"site-{site.pk}"
    frames = list(itertools.islice(iter_frames(camera.stream_url, SourceOptions(fps=5, realtime=False)), 20))
    assert len(frames) == 10  # 2 s of video at 10 fps, analysed at 5 fps


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("clip.mp4", os.urandom(4096), "not a video container"),
        ("setup.exe", b"MZ" + os.urandom(100), "not a video type"),
        ("empty.mp4", b"", "The submitted file is empty"),
    ],
)
def test_a_file_that_is_not_a_video_is_refused(
    admin_client: Client, site: Site, name: str, content: bytes, message: str
) -> None:
    upload = SimpleUploadedFile(name, content)
    response = admin_client.post("/admin/monitor/camera/add/", camera_form(site, stream_url="", upload=upload))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Camera.objects.exists()


def test_an_upload_over_the_size_limit_is_refused(admin_client: Client, site: Site, settings, tmp_path: Path) -> None:
    settings.ARGUS_MAX_UPLOAD_MB = 0
    video = SimpleUploadedFile("big.mp4", small_mp4(tmp_path / "v.mp4"))
    response = admin_client.post("/admin/monitor/camera/add/", camera_form(site, stream_url="", upload=video))
    assert "the limit is 0 MB" in response.content.decode()
    assert not Camera.objects.exists()


def test_a_camera_needs_a_stream_url_or_an_upload(admin_client: Client, site: Site) -> None:
    response = admin_client.post("/admin/monitor/camera/add/", camera_form(site, stream_url=""))
    assert "give a stream URL or upload a video file" in response.content.decode()
