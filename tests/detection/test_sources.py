"""Video sources on a small lossless clip whose pixels say which frame they are."""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from detection.sources import (
    PermanentSourceError,
    Sampler,
    SourceError,
    SourceOptions,
    UnsupportedSource,
    check_source_url,
    hardware_decoding,
    iter_frames,
)

FPS, FRAMES, WIDTH, HEIGHT = 25, 50, 64, 48
START = 1_700_000_000.0
START_DT = datetime.fromtimestamp(START, tz=UTC)


def clip_image(index: int) -> np.ndarray:
    """(H, W, 3) BGR: blue is the frame index, green the column, red 255 - index."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = index
    image[..., 1] = np.arange(WIDTH, dtype=np.uint8)
    image[..., 2] = 255 - index
    return image


def source_index(image: np.ndarray) -> int:
    index = int(image[0, 0, 0])
    assert np.array_equal(image, clip_image(index)), "the frame's pixels did not round-trip exactly"
    return index


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """2 s at 25 fps of FFV1 in Matroska: lossless, so decoded pixels equal the written ones."""
    path = tmp_path_factory.mktemp("clip") / "counter.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for index in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(clip_image(index), format="bgr24")))
        container.mux(stream.encode())
    return str(path)


class FakeClock:
    """Stands in for time.time and time.sleep: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def frames_of(url: str, clock: FakeClock | None = None, **options):
    clock = clock or FakeClock()
    return iter_frames(url, SourceOptions(**options), clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("/srv/clips/gate.mp4", "file"),
        ("clips/gate.mp4", "file"),
        (r"C:\clips\gate.mp4", "file"),
        ("file:///srv/clips/gate.mp4", "file"),
        ("rtsp://10.0.0.5:554/stream1", "rtsp"),
        ("RTSPS://cam.example/live", "rtsps"),
        ("http://cam.example/video.mjpg", "http"),
        ("https://cam.example/live.m3u8", "https"),
    ],
)
def test_supported_urls_are_accepted(url, scheme):
    assert check_source_url(url) == scheme


@pytest.mark.parametrize("url", ["ftp://cam.example/clip.mp4", "javascript:alert(1)"])
def test_other_schemes_are_rejected_with_the_supported_ones_listed(url):
    with pytest.raises(UnsupportedSource, match="file, http, https, rtsp, rtsps"):
        check_source_url(url)


@pytest.mark.parametrize("url", ["", "   "])
def test_an_empty_url_is_rejected(url):
    with pytest.raises(UnsupportedSource, match="empty"):
        check_source_url(url)


def test_the_sampler_keeps_one_frame_per_interval_of_stream_time():
    sampler = Sampler(fps=5)
    times = [i / 25 for i in range(50)]
    assert [round(t, 2) for t in times if sampler.keep(t)] == [round(0.2 * k, 2) for k in range(10)]


def test_the_sampler_restarts_its_grid_after_a_gap():
    sampler = Sampler(fps=2)
    kept = [t for t in (0.0, 0.3, 0.5, 0.9, 3.1, 3.4, 3.6) if sampler.keep(t)]
    assert kept == [0.0, 0.5, 3.1, 3.6]


def test_a_file_yields_every_fifth_frame_at_5_fps_with_exact_pixels(clip):
    frames = list(frames_of(clip, fps=5, realtime=False))
    assert [source_index(f.image) for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert [f.time for f in frames] == [START_DT + timedelta(seconds=0.2 * k) for k in range(10)]
    assert all(f.image.shape == (HEIGHT, WIDTH, 3) and f.image.dtype == np.uint8 for f in frames)


def test_a_file_url_reads_the_same_frames_as_its_path(clip, tmp_path):
    spaced = tmp_path / "gate camera.mkv"
    spaced.write_bytes(Path(clip).read_bytes())
    assert spaced.as_uri().endswith("gate%20camera.mkv")
    for url in ("file://" + clip, spaced.as_uri()):
        frames = list(frames_of(url, fps=5, realtime=False))
        assert [source_index(f.image) for f in frames] == list(range(0, 50, 5))


def test_a_looped_file_carries_on_past_its_end_with_increasing_times(clip):
    frames = list(itertools.islice(frames_of(clip, fps=5, realtime=False, loop=True), 25))
    assert [source_index(f.image) for f in frames] == [5 * (k % 10) for k in range(25)]
    assert [f.time for f in frames] == [START_DT + timedelta(seconds=0.2 * k) for k in range(25)]


@pytest.mark.parametrize(
    ("work_s", "expected_sleeps"),
    [
        (0.0, [0.2] * 9),  # an idle consumer waits a whole interval per frame
        (0.15, [0.05] * 9),  # time spent on a frame is taken off the wait
        (0.3, []),  # a consumer slower than the source never waits
    ],
)
def test_realtime_playback_waits_until_each_frame_is_due(clip, work_s, expected_sleeps):
    clock = FakeClock()
    times = []
    for frame in frames_of(clock=clock, url=clip, fps=5, realtime=True):
        times.append(frame.time)
        clock.now += work_s
    assert clock.sleeps == pytest.approx(expected_sleeps, abs=1e-6)
    assert times == [START_DT + timedelta(seconds=0.2 * k) for k in range(10)]


def test_a_missing_file_raises_source_error_saying_not_found(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        next(frames_of(str(tmp_path / "nothing.mkv"), realtime=False))


def test_an_empty_file_raises_source_error(tmp_path):
    path = tmp_path / "empty.mkv"
    path.write_bytes(b"")
    with pytest.raises(SourceError):
        next(frames_of(str(path), realtime=False))


def test_a_file_of_random_bytes_raises_source_error(tmp_path):
    path = tmp_path / "noise.mkv"
    path.write_bytes(random.Random(0).randbytes(64 * 1024))
    with pytest.raises(SourceError):
        list(frames_of(str(path), realtime=False))


def test_a_closed_network_port_raises_source_error_quickly():
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot open"):
        next(frames_of("rtsp://127.0.0.1:9/x", open_timeout_s=2.0, read_timeout_s=2.0))
    assert time.monotonic() - started < 5.0


# --- Sources that can never work: a clear, permanent reason -------------------------------------


def test_an_empty_file_is_a_permanent_failure_saying_so(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(PermanentSourceError, match=r"the file is empty \(0 bytes\)"):
        next(frames_of(str(path), realtime=False))


def test_a_file_of_random_bytes_is_a_permanent_failure(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(random.Random(0).randbytes(64 * 1024))
    with pytest.raises(PermanentSourceError, match="is not a playable video file"):
        next(frames_of(str(path), realtime=False))


@pytest.mark.parametrize(
    ("keep_bytes", "reason"),
    [
        (300, r"is not a playable video file \(Input/output error\)"),  # cut inside the header
        (600, r"no decodable video frames in .* \(truncated or corrupt\)"),  # header, then nothing
    ],
)
def test_a_truncated_file_is_a_permanent_failure(clip, tmp_path, keep_bytes, reason):
    path = tmp_path / "truncated.mkv"
    path.write_bytes(Path(clip).read_bytes()[:keep_bytes])
    with pytest.raises(PermanentSourceError, match=reason):
        list(frames_of(str(path), realtime=False))


def test_a_file_without_video_is_a_permanent_failure(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    with pytest.raises(PermanentSourceError, match="has no video stream"):
        next(frames_of(str(path), realtime=False))


def test_a_video_codec_ffmpeg_cannot_decode_is_a_permanent_failure(clip, tmp_path):
    data = Path(clip).read_bytes()
    assert data.count(b"FFV1") == 1, "the codec's FourCC, to swap for one nobody knows"
    path = tmp_path / "unknown-codec.mkv"
    path.write_bytes(data.replace(b"FFV1", b"QQQQ"))
    with pytest.raises(PermanentSourceError, match="unsupported video codec"):
        next(frames_of(str(path), realtime=False))


def test_a_missing_file_is_not_permanent_it_may_be_a_mount_not_there_yet(tmp_path):
    with pytest.raises(SourceError, match="not found") as raised:
        next(frames_of(str(tmp_path / "later.mkv"), realtime=False))
    assert not isinstance(raised.value, PermanentSourceError)


# --- Hardware decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["no-such-device", "cuda"])
def test_hardware_decoding_falls_back_to_software_where_the_device_cannot_be_used(clip, device, caplog):
    """On this CPU machine neither device works; on a GPU worker 'cuda' may be used, but FFV1 has no
    hardware decoder and PyAV falls back to software itself. Either way: the same exact frames."""
    hardware_decoding.cache_clear()
    try:
        frames = list(frames_of(clip, fps=5, realtime=False, hwaccel=device))
    finally:
        hardware_decoding.cache_clear()
    assert [source_index(f.image) for f in frames] == list(range(0, 50, 5))
    if device == "no-such-device":
        assert "decoding in software" in caplog.text


def test_no_hardware_device_means_plain_software_decoding():
    assert hardware_decoding("") is None
