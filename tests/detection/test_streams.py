"""Network sources against real servers on loopback: RTSP over TCP and UDP, MJPEG, HLS and
progressive MP4 over HTTP, and servers that hang (every read is bounded by a timeout)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from detection.sources import SourceError, SourceOptions, iter_frames
from tests.detection.streaming import (
    X264,
    InterleavedRtspServer,
    LoopbackHttp,
    PerlRtspServer,
    ffmpeg,
    footage_jpegs,
    needs,
    silent_server,
)

pytestmark = pytest.mark.timeout(60)


def first_frames(url: str, count: int = 5, **options: object) -> list:
    defaults: dict[str, object] = {"fps": 5.0, "open_timeout_s": 10.0, "read_timeout_s": 5.0}
    return list(itertools.islice(iter_frames(url, SourceOptions(**(defaults | options))), count))  # type: ignore[arg-type]


def assert_real_pictures(frames: list, count: int = 5, width: int = 320) -> None:
    assert len(frames) == count
    assert all(f.image.shape[1] == width and f.image.std() > 10 for f in frames), "blank or wrong-sized frames"
    assert [f.index for f in frames] == list(range(count))


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real footage as progressive MP4 (moov first) and as an HLS playlist with 1 s segments."""
    from tests.conftest import real_footage_path, require_or_skip

    footage = real_footage_path()
    if footage is None:
        require_or_skip("no real footage: run `make footage`")
    assert footage is not None
    needs("ffmpeg")
    folder = tmp_path_factory.mktemp("encoded")
    ffmpeg("-i", str(footage), "-t", "4", *X264, "-movflags", "+faststart", str(folder / "clip.mp4"))
    hls = ["-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_filename", str(folder / "seg%02d.ts")]
    ffmpeg("-i", str(footage), "-t", "4", *X264, *hls, str(folder / "index.m3u8"))
    return folder


def test_rtsp_over_tcp_yields_real_frames_over_an_interleaved_connection(real_footage: Path, tmp_path: Path) -> None:
    needs("ffmpeg")
    with InterleavedRtspServer(real_footage, tmp_path) as server:
        frames = first_frames(server.url, rtsp_transport="tcp")
    assert_real_pictures(frames)
    assert server.setups and all("TCP" in t for t in server.setups), server.setups


def test_rtsp_over_udp_yields_real_frames_from_rtsp_server_perl(real_footage: Path, tmp_path: Path) -> None:
    needs("rtsp-server-perl", "ffmpeg")
    with PerlRtspServer(real_footage, tmp_path) as server:
        server.start()
        server.wait_streaming()
        assert_real_pictures(first_frames(server.url, rtsp_transport="udp"))


def test_a_server_that_refuses_rtsp_over_tcp_is_read_over_udp(
    real_footage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    needs("rtsp-server-perl", "ffmpeg")
    with PerlRtspServer(real_footage, tmp_path) as server:
        server.start()
        server.wait_streaming()
        assert_real_pictures(first_frames(server.url, rtsp_transport="tcp"))
    assert "refused RTSP over TCP" in caplog.text


def test_mjpeg_over_http_yields_real_frames(real_footage: Path, tmp_path: Path) -> None:
    with LoopbackHttp(tmp_path, jpegs=footage_jpegs(real_footage)) as server:
        assert_real_pictures(first_frames(f"{server.base}/live.mjpg"))


def test_hls_from_a_loopback_directory_yields_real_frames_to_the_end_of_the_playlist(encoded: Path) -> None:
    with LoopbackHttp(encoded) as server:
        frames = first_frames(f"{server.base}/index.m3u8", count=100, fps=2.0)
    assert 7 <= len(frames) <= 9, "4 s of playlist at 2 fps, then the source ends"
    assert_real_pictures(frames, count=len(frames))


def test_progressive_mp4_over_http_yields_real_frames(encoded: Path) -> None:
    with LoopbackHttp(encoded) as server:
        assert_real_pictures(first_frames(f"{server.base}/clip.mp4"))


@pytest.mark.parametrize(
    ("scheme", "options"),
    [("rtsp", {"rtsp_transport": "tcp"}), ("rtsp", {"rtsp_transport": "udp"}), ("http", {})],
)
def test_a_server_that_accepts_and_says_nothing_gives_up_at_the_open_timeout(scheme: str, options: dict) -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(SourceError, match="no answer within 1.5 s"):
            first_frames(f"{scheme}://127.0.0.1:{port}/live", open_timeout_s=1.5, **options)
        assert time.monotonic() - started < 3.0


def test_a_response_that_stalls_half_way_gives_up_at_the_read_timeout(encoded: Path) -> None:
    frames, gave_up_after = 0, None
    with LoopbackHttp(encoded) as server:
        last = time.monotonic()
        with pytest.raises(SourceError, match="stalled: no data for 1.5 s"):
            for _ in iter_frames(f"{server.base}/stall/clip.mp4", SourceOptions(fps=5, read_timeout_s=1.5)):
                frames, last = frames + 1, time.monotonic()
        gave_up_after = time.monotonic() - last
    assert frames > 0, "the first half of the file decodes"
    assert gave_up_after < 4.0
