"""The clip recorder without Django: the packet ring buffer, clip windows cut from a lossless H.264
source whose pixels say which frame they are, and the mp4 it writes."""

from __future__ import annotations

import errno
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detection import recording
from detection.recording import (
    BufferedPacket,
    ClipPaths,
    ClipRecorder,
    ClipRequest,
    ClipSettings,
    EncodedClip,
    PacketRing,
    StreamInfo,
    decode_window,
)
from detection.sources import SourceOptions, iter_frames

FPS, FRAMES, GOP, WIDTH, HEIGHT = 25, 100, 10, 96, 64
START = datetime.fromtimestamp(1_700_000_000, tz=UTC)


def luma(index: int) -> int:
    return 20 + 2 * index  # frame 0..99 -> 20..218


def planes(index: int) -> np.ndarray:
    """(3, H, W) yuv444p: Y says the frame, U is a horizontal ramp, V a constant."""
    y = np.full((HEIGHT, WIDTH), luma(index), np.uint8)
    u = np.tile(np.arange(WIDTH, dtype=np.uint8) + 64, (HEIGHT, 1))
    v = np.full((HEIGHT, WIDTH), 128, np.uint8)
    return np.stack([y, u, v])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """4 s at 25 fps of lossless H.264 (qp 0, 4:4:4), a keyframe every 10 frames, B-frames on."""
    path = tmp_path_factory.mktemp("source") / "counter.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.options = {"qp": "0", "bf": "2", "sc_threshold": "0", "keyint_min": str(GOP)}
        for index in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(planes(index), format="yuv444p")))
        container.mux(stream.encode())
    return str(path)


@dataclass
class MemoryStore:
    """Writes files under a folder and remembers what it was told, as the Django store would."""

    root: Path
    ready_clips: list[EncodedClip] = field(default_factory=list)
    failures: list[tuple[int, str, bool]] = field(default_factory=list)
    refuse: bool = False

    def paths(self, request: ClipRequest) -> ClipPaths:
        stem = self.root / "clips" / f"incident-{request.incident_id}"
        return ClipPaths(stem.with_suffix(".mp4"), stem.with_suffix(".jpg"))

    def ready(self, request: ClipRequest, clip: EncodedClip) -> None:
        if self.refuse:
            raise RuntimeError("database is down")
        self.ready_clips.append(clip)

    def failed(self, request: ClipRequest, error: str, *, missing: bool) -> None:
        self.failures.append((request.incident_id, error, missing))

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def run_source(
    url: str, recorder: ClipRecorder, triggers: dict[int, int], *, frames: int | None = None, loop: bool = False
) -> None:
    """Play the source through the recorder (every frame analysed); open incident id at frame n."""
    options = SourceOptions(fps=FPS, realtime=False, loop=loop)
    stream = iter_frames(url, options, clock=START.timestamp, sleep=lambda s: None, tap=recorder)
    for n, frame in enumerate(itertools.islice(stream, frames)):
        if n in triggers:
            recorder.start(triggers[n], frame.time, poster=True)
    recorder.close(timeout_s=60)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


# --- The ring buffer ------------------------------------------------------------------------

INFO = StreamInfo("h264", None, WIDTH, HEIGHT, Fraction(1, FPS), Fraction(FPS))


def packets(count: int, *, every: int = 10, info: StreamInfo = INFO, first: int = 0, size: int = 100):
    """Synthetic packets at 10 per second, a keyframe every `every`."""
    for n in range(first, first + count):
        yield BufferedPacket(bytes(size), n, n, n % every == 0, at(n / 10), info)


def test_the_ring_keeps_from_the_last_keyframe_before_now_minus_the_pre_roll():
    ring = PacketRing(keep_s=2.5, max_bytes=10**6, max_age_s=60)
    for packet in packets(50):  # 0.0 .. 4.9 s, keyframes each second
        ring.add(packet)
    # now - 2.5 s = 2.4 s: the last keyframe at or before it is the one at 2.0 s.
    assert ring.oldest == at(2.0)
    assert ring.since(at(2.4))[0].when == at(2.0)
    assert ring.since(at(3.0))[0].when == at(3.0)
    assert len(ring.since(at(0))) == 30 and ring.size == 30 * 100


def test_the_ring_drops_whole_groups_of_pictures_to_stay_within_its_byte_budget():
    ring = PacketRing(keep_s=10, max_bytes=2_500, max_age_s=60)
    for packet in packets(46):  # 4600 bytes in groups of 1000 (the last one growing)
        ring.add(packet)
    # Over budget by 2100 bytes: three whole groups go, not 2100 bytes of packets.
    assert ring.size == 1_600 and ring.oldest == at(3.0)
    assert ring.since(at(0))[0].keyframe, "dropping part of a group would leave undecodable packets"


def test_a_group_longer_than_the_age_bound_is_dropped_and_the_ring_waits_for_the_next_keyframe():
    ring = PacketRing(keep_s=1, max_bytes=10**6, max_age_s=3)
    for packet in packets(35, every=100):  # one keyframe, then 3.4 s of dependent packets
        ring.add(packet)
    assert ring.oldest is None and ring.size == 0
    for packet in packets(5, every=100, first=35):  # still no keyframe: nothing to decode from
        ring.add(packet)
    assert ring.size == 0
    for packet in packets(3, every=40, first=40):
        ring.add(packet)
    assert ring.oldest == at(4.0) and ring.size == 300


def test_a_reopened_source_starts_a_new_segment_at_its_first_keyframe():
    ring = PacketRing(keep_s=30, max_bytes=10**6, max_age_s=60)
    for packet in packets(15):
        ring.add(packet)
    reopened = StreamInfo("h264", b"new", WIDTH * 2, HEIGHT * 2, Fraction(1, 90_000), Fraction(30))
    ring.new_segment()
    for packet in [*packets(5, every=100, first=15, info=reopened), *packets(10, info=reopened, first=20)]:
        ring.add(packet)
    kept = ring.since(at(0))
    assert [p.stream for p in kept] == [INFO] * 15 + [reopened] * 10
    assert kept[15].keyframe and kept[15].when == at(2.0), "packets before the new keyframe were dropped"


# --- Clip windows cut from a real (lossless) source -----------------------------------------


def test_decoding_a_window_gives_exactly_its_frames_from_the_keyframe_before_it(source, tmp_path):
    recorder = ClipRecorder(MemoryStore(tmp_path), pre_roll_s=60, post_roll_s=0)
    run_source(source, recorder, {})
    window = recorder.ring.since(at(1.3))
    assert window[0].keyframe and window[0].when == at(1.2)  # keyframes every 0.4 s (10 frames)

    decoded = list(decode_window(window, at(1.3), at(2.0)))

    assert [when for when, _ in decoded] == [at(n / FPS) for n in range(33, 50)]
    for n, (_, frame) in zip(range(33, 50), decoded, strict=True):
        assert np.array_equal(frame.to_ndarray(format="yuv444p"), planes(n))


def test_a_clip_covers_pre_roll_before_to_post_roll_after_the_trigger_frame(source, tmp_path):
    store = MemoryStore(tmp_path)
    # Every frame kept and x264 lossless (crf 0), so each luma plane can be checked exactly.
    settings = ClipSettings(max_fps=FPS, crf=0)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=1.2, settings=settings)

    run_source(source, recorder, {50: 7})  # frame 50 is at 2.0 s

    [clip] = store.ready_clips
    assert clip.started_at == at(1.0) and clip.frames == 55 and clip.duration_s == pytest.approx(2.2)
    with av.open(str(clip.video)) as container:
        lumas = [f.to_ndarray(format="yuv420p")[:HEIGHT] for f in container.decode(video=0)]
    assert [int(y[0, 0]) for y in lumas] == [luma(n) for n in range(25, 80)]
    assert all(np.array_equal(y, planes(n)[0]) for n, y in zip(range(25, 80), lumas, strict=True))
    assert clip.poster == tmp_path / "clips" / "incident-7.jpg"
    assert store.files() == sorted([clip.video, clip.poster])
    poster = cv2.imread(str(clip.poster), cv2.IMREAD_GRAYSCALE)
    assert poster.shape == (HEIGHT, WIDTH)
    assert abs(float(poster.mean()) - luma(50)) < abs(float(poster.mean()) - luma(45)), "the trigger frame"


def test_a_clip_across_a_reopened_source_decodes_each_segment_with_its_own_decoder(source, tmp_path):
    store = MemoryStore(tmp_path)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=1.0, settings=ClipSettings(max_fps=FPS, crf=0))

    run_source(source, recorder, {95: 2}, frames=160, loop=True)  # the file ends at 4.0 s and reopens

    [clip] = store.ready_clips
    with av.open(str(clip.video)) as container:
        lumas = [int(f.to_ndarray(format="yuv420p")[0, 0]) for f in container.decode(video=0)]
    assert lumas == [luma(n) for n in [*range(70, 100), *range(0, 20)]]


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8].decode()
        boxes.append(kind)
        offset += size if size > 1 else len(data)
    return boxes


def test_the_clip_is_browser_ready_h264_at_most_15_fps_lasting_pre_plus_post(source, tmp_path):
    store = MemoryStore(tmp_path)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=1.0)

    run_source(source, recorder, {50: 1})

    [clip] = store.ready_clips
    with av.open(str(clip.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 15
        duration = float(stream.duration * stream.time_base)
        assert duration == pytest.approx(2.0, rel=0.1)
        assert len(list(container.decode(stream))) == 30
    boxes = top_level_boxes(clip.video)
    assert boxes.index("moov") < boxes.index("mdat"), "faststart: the index must come first"


def test_a_clip_cut_short_by_the_end_of_analysis_keeps_what_was_buffered(source, tmp_path):
    store = MemoryStore(tmp_path)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=5.0, settings=ClipSettings(max_fps=FPS))

    run_source(source, recorder, {50: 3}, frames=70)  # the analysis stops at 2.8 s

    [clip] = store.ready_clips
    assert clip.started_at == at(1.0)
    assert 1.7 <= clip.duration_s < 3.0, "from 1.0 s to about where the source was read, not 6 s"


def test_a_clip_with_nothing_buffered_is_reported_missing_without_a_file(tmp_path):
    store = MemoryStore(tmp_path)
    recorder = ClipRecorder(store, pre_roll_s=2.0, post_roll_s=2.0)
    recorder.start(4, at(10), poster=False)
    recorder.close()
    assert store.failures == [(4, "no video of the clip's time window was buffered", True)]
    assert store.ready_clips == [] and store.files() == []


def test_a_full_disk_fails_the_clip_and_leaves_no_file(source, tmp_path, monkeypatch):
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recording.os, "fsync", no_space)
    store = MemoryStore(tmp_path)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=1.0)

    run_source(source, recorder, {50: 5})

    assert store.failures == [(5, "could not write the clip: No space left on device", False)]
    assert store.ready_clips == [] and store.files() == []


def test_a_clip_the_store_cannot_record_is_deleted_and_reported_failed(source, tmp_path):
    store = MemoryStore(tmp_path, refuse=True)
    recorder = ClipRecorder(store, pre_roll_s=1.0, post_roll_s=1.0)

    run_source(source, recorder, {50: 6})

    assert store.failures == [(6, "the clip was encoded but could not be recorded", False)]
    assert store.files() == []
