"""Incident clips: a ring buffer of compressed packets (the pre-roll) and an encoder thread that turns
a window of them into an H.264 mp4 with a poster JPEG.

The buffer is fed through the source's PacketTap, before decoding, so the steady state costs one
copy of each packet's bytes and no decoding; only a clip's packets are decoded, once, off the
analysis thread. Nothing here touches Django: a ClipStore (implemented with monitor.services in
the worker) is told where files go and whether each clip is ready or failed.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Protocol, cast

import av
import av.container
import av.video.stream
import numpy as np
from av.video.codeccontext import VideoCodecContext

from detection.render import encode_jpeg

log = logging.getLogger(__name__)

# With B-frames, packets arrive in decode order: a few after the window's end may still show
# frames inside it, so a clip is cut this long after its end was first reached.
REORDER_SLACK_S = 0.5


@dataclass(frozen=True)
class ClipSettings:
    margin_s: float = 2.0  # pre-roll kept beyond the longest one asked for
    max_buffer_bytes: int = 64 * 1024 * 1024  # per camera; a clip gives up its pre-roll past this
    max_buffer_s: float = 180.0  # no group of pictures is kept longer than this, however long it is
    max_fps: float = 15.0  # clips keep the source's rate up to this, to bound encoding CPU
    max_width: int = 960
    crf: int = 26  # x264 quality: 23 is its default, higher is smaller
    preset: str = "veryfast"
    threads: int = 1  # the encoder must leave the other cores to the analysis loop
    keyframe_every_s: float = 2.0  # seek points for the browser


@dataclass(frozen=True, eq=False)
class StreamInfo:
    """What a decoder needs to start; a new object for each (re)opened source, compared by identity."""

    codec: str
    extradata: bytes | None
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None

    @classmethod
    def of(cls, stream: av.video.stream.VideoStream) -> StreamInfo:
        ctx = stream.codec_context
        return cls(
            codec=ctx.name,
            extradata=bytes(ctx.extradata) if ctx.extradata else None,
            width=ctx.width,
            height=ctx.height,
            time_base=stream.time_base or Fraction(1, 90_000),
            rate=stream.average_rate or stream.guessed_rate,
        )


@dataclass(frozen=True, eq=False)
class BufferedPacket:
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    when: datetime  # the wall-clock time the packet stands for
    stream: StreamInfo

    @property
    def stamp(self) -> int | None:
        return self.pts if self.pts is not None else self.dts

    def to_av(self) -> av.Packet:
        packet = av.Packet(self.data)
        packet.pts, packet.dts, packet.time_base = self.pts, self.dts, self.stream.time_base
        return packet


@dataclass
class _Gop:
    """A keyframe and the packets that depend on it: the unit the buffer keeps or drops."""

    packets: list[BufferedPacket]
    size: int

    @property
    def start(self) -> datetime:
        return self.packets[0].when


class PacketRing:
    """Compressed packets from the last keyframe before newest - keep_s, bounded in bytes and time."""

    def __init__(self, *, keep_s: float, max_bytes: int, max_age_s: float) -> None:
        self.keep = timedelta(seconds=keep_s)
        self.max_bytes, self.max_age = max_bytes, timedelta(seconds=max(keep_s, max_age_s))
        self.gops: deque[_Gop] = deque()
        self.size = 0
        self.newest: datetime | None = None
        self._open = False  # whether the next packet may extend the last group of pictures

    def new_segment(self) -> None:
        """A (re)opened source: its packets cannot extend a group of the old one; wait for a keyframe."""
        self._open = False

    def add(self, packet: BufferedPacket) -> None:
        """Keep the packet, unless it depends on a keyframe the buffer no longer (or never) had."""
        if packet.keyframe:
            self.gops.append(_Gop([], 0))
            self._open = True
        elif not self._open:
            return
        gop = self.gops[-1]
        gop.packets.append(packet)
        gop.size += len(packet.data)
        self.size += len(packet.data)
        self.newest = packet.when if self.newest is None else max(self.newest, packet.when)
        self._evict(self.newest)

    def since(self, start: datetime) -> list[BufferedPacket]:
        """Packets from the last keyframe at or before `start` (or the oldest one kept) onwards."""
        gops = list(self.gops)
        first = max((i for i, g in enumerate(gops) if g.start <= start), default=0)
        return [p for g in gops[first:] for p in g.packets]

    @property
    def oldest(self) -> datetime | None:
        return self.gops[0].start if self.gops else None

    def _drop_oldest(self) -> None:
        self.size -= self.gops.popleft().size
        if not self.gops:
            self._open = False  # the group being filled went: what follows cannot be decoded

    def _evict(self, newest: datetime) -> None:
        horizon = newest - self.keep
        while len(self.gops) > 1 and self.gops[1].start <= horizon:
            self._drop_oldest()
        # Hard bounds, even if it costs the pre-roll: a huge or endless group of pictures.
        while self.gops and (self.size > self.max_bytes or self.gops[0].start < newest - self.max_age):
            self._drop_oldest()


@dataclass(frozen=True)
class ClipRequest:
    incident_id: int
    trigger: datetime  # the time of the frame that opened the incident
    start: datetime
    end: datetime
    poster: bool  # whether the incident needs a poster from the clip (it has none yet)


@dataclass(frozen=True)
class ClipPaths:
    video: Path
    poster: Path


@dataclass(frozen=True)
class EncodedClip:
    video: Path
    poster: Path | None
    started_at: datetime  # wall time of the first frame
    frames: int
    duration_s: float


class NoFrames(Exception):
    """Nothing of the window was buffered (e.g. the source had just started): the clip is missing."""


class ClipStore(Protocol):
    """Where clip files go and who hears how each ended; called from the encoder thread."""

    def paths(self, request: ClipRequest) -> ClipPaths: ...

    def ready(self, request: ClipRequest, clip: EncodedClip) -> None:
        """Record the clip; raising makes the recorder delete its files."""

    def failed(self, request: ClipRequest, error: str, *, missing: bool) -> None: ...


# --- Decoding and encoding ------------------------------------------------------------------


def _runs(packets: Sequence[BufferedPacket]) -> Iterator[list[BufferedPacket]]:
    """Consecutive packets of one opened stream: each run needs a decoder of its own."""
    run: list[BufferedPacket] = []
    for packet in packets:
        if run and packet.stream is not run[0].stream:
            yield run
            run = []
        run.append(packet)
    if run:
        yield run


def _decoder(info: StreamInfo) -> VideoCodecContext:
    ctx = cast(VideoCodecContext, av.CodecContext.create(info.codec, "r"))
    if info.extradata:
        ctx.extradata = info.extradata
    ctx.width, ctx.height = info.width, info.height  # some codecs (e.g. MS-MPEG4 in AVI) need them
    return ctx


def _decode_run(run: list[BufferedPacket]) -> Iterator[tuple[datetime, av.VideoFrame]]:
    """Frames of one run with their wall times.

    Times are the run's first packet's wall time plus stream time since it: a live source stamps
    packets with their arrival, which comes in bursts, while its own timestamps keep the cadence.
    """
    anchor = run[0]
    ctx = _decoder(anchor.stream)
    for packet in [*run, None]:
        try:
            frames = ctx.decode(packet.to_av() if packet is not None else None)
        except av.error.FFmpegError as exc:  # one damaged packet must not cost the whole clip
            log.debug("clip: undecodable packet skipped: %s", exc)
            continue
        for frame in frames:
            if frame.pts is None or anchor.stamp is None:
                continue
            yield anchor.when + timedelta(seconds=float((frame.pts - anchor.stamp) * anchor.stream.time_base)), frame


def decode_window(
    packets: Sequence[BufferedPacket], start: datetime, end: datetime
) -> Iterator[tuple[datetime, av.VideoFrame]]:
    """Decoded frames whose wall time lies in [start, end), in order."""
    for run in _runs(packets):
        for when, frame in _decode_run(run):
            if start <= when < end:
                yield when, frame


def _output_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """At most max_width wide, even sides (yuv420p halves the chroma planes)."""
    out_w = min(width, max_width) // 2 * 2
    return out_w, max(2, round(height * out_w / width / 2) * 2)


def _output_rate(packets: Sequence[BufferedPacket], max_fps: float) -> Fraction:
    rate = packets[0].stream.rate
    if rate is None or rate <= 0 or rate > max_fps:
        return Fraction(max_fps).limit_denominator(1001)
    return Fraction(rate).limit_denominator(1001)


@dataclass
class _PosterPick:
    """The decoded frame nearest to the trigger time."""

    trigger: datetime
    frame: av.VideoFrame | None = None
    distance: timedelta = field(default=timedelta.max)

    def offer(self, when: datetime, frame: av.VideoFrame) -> None:
        if abs(when - self.trigger) < self.distance:
            self.frame, self.distance = frame, abs(when - self.trigger)

    def image(self) -> np.ndarray | None:
        return None if self.frame is None else self.frame.to_ndarray(format="bgr24")


def _add_h264_stream(
    container: av.container.OutputContainer, first: av.VideoFrame, rate: Fraction, settings: ClipSettings
) -> av.video.stream.VideoStream:
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height = _output_size(first.width, first.height, settings.max_width)
    stream.pix_fmt = "yuv420p"
    stream.time_base = 1 / rate
    ctx = stream.codec_context
    ctx.thread_count = settings.threads
    ctx.gop_size = max(1, round(settings.keyframe_every_s * rate))
    ctx.options = {"preset": settings.preset, "crf": str(settings.crf)}
    return stream


def encode_mp4(
    packets: Sequence[BufferedPacket], request: ClipRequest, target: Path, settings: ClipSettings
) -> tuple[EncodedClip, np.ndarray | None]:
    """Decode the window's packets and write them to `target` as H.264 mp4; the poster frame aside."""
    frames = decode_window(packets, request.start, request.end)
    first = next(frames, None)
    if first is None:
        raise NoFrames("no video of the clip's time window was buffered")
    started_at, rate = first[0], _output_rate(packets, settings.max_fps)
    poster = _PosterPick(request.trigger)
    count, last_pts = 0, -1
    # +faststart moves the index (moov) before the media, so a browser can play before the end.
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = _add_h264_stream(container, first[1], rate, settings)
        for when, frame in itertools.chain([first], frames):
            # Timestamps follow wall time, so gaps stay gaps and faster sources are thinned out.
            pts = round((when - started_at).total_seconds() * rate)
            if pts <= last_pts:
                continue
            out = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            # In the encoder's time base: the muxer changes the stream's own once the header is out.
            out.pts, out.time_base = pts, 1 / rate
            container.mux(stream.encode(out))
            poster.offer(when, frame)
            count, last_pts = count + 1, pts
        container.mux(stream.encode(None))
    duration = float((last_pts + 1) / rate)
    clip = EncodedClip(video=target, poster=None, started_at=started_at, frames=count, duration_s=duration)
    return clip, poster.image() if request.poster else None


# --- Files: written under a temporary name, made durable, then renamed ----------------------


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: Path, final: Path) -> None:
    """Make `tmp` durable, then give it its final name (readers never see half a file)."""
    _fsync_path(tmp)
    os.replace(tmp, final)
    _fsync_path(final.parent)  # the rename itself survives a crash too


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    return Path(name)


def write_clip(
    packets: Sequence[BufferedPacket], request: ClipRequest, paths: ClipPaths, settings: ClipSettings
) -> EncodedClip:
    """Encode and store the clip (and its poster if asked); on any error no file is left behind."""
    written: list[Path] = []
    tmp = _temp_beside(paths.video)
    try:
        clip, poster_image = encode_mp4(packets, request, tmp, settings)
        _commit(tmp, paths.video)
        written.append(paths.video)
        poster = None
        if poster_image is not None:
            poster_tmp = _temp_beside(paths.poster)
            written.append(poster_tmp)
            poster_tmp.write_bytes(encode_jpeg(poster_image))
            _commit(poster_tmp, paths.poster)
            written[-1] = poster = paths.poster
    except BaseException:
        for path in (tmp, *written):
            path.unlink(missing_ok=True)
        raise
    return EncodedClip(paths.video, poster, clip.started_at, clip.frames, clip.duration_s)


def _discard(clip: EncodedClip) -> None:
    for path in (clip.video, clip.poster):
        if path is not None:
            path.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"could not write the clip: {os.strerror(exc.errno)}"
    return f"could not encode the clip: {exc}"[:500]


# --- The recorder: a PacketTap plus clips waiting for their post-roll -----------------------


@dataclass
class _Pending:
    request: ClipRequest
    packets: list[BufferedPacket]
    size: int = 0


class ClipRecorder:
    """Feeds the ring buffer from the source and cuts clips for incidents, encoding them in a thread.

    Called only from the analysis thread (tap and sink alike); the encoder thread gets its own list
    of packets per clip, whose bytes are never modified, so nothing needs a lock.
    """

    def __init__(
        self, store: ClipStore, *, pre_roll_s: float, post_roll_s: float, settings: ClipSettings | None = None
    ) -> None:
        self.store, self.settings = store, settings or ClipSettings()
        self.pre_roll, self.post_roll = timedelta(seconds=pre_roll_s), timedelta(seconds=post_roll_s)
        self.ring = PacketRing(
            keep_s=pre_roll_s + self.settings.margin_s,
            max_bytes=self.settings.max_buffer_bytes,
            max_age_s=self.settings.max_buffer_s,
        )
        self.pending: list[_Pending] = []
        self.futures: list[Future[None]] = []
        self._stream: StreamInfo | None = None
        self._decodable = False  # a keyframe of the current stream was seen
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-encoder")

    # PacketTap
    def stream_opened(self, stream: av.video.stream.VideoStream) -> None:
        self._stream, self._decodable = StreamInfo.of(stream), False
        self.ring.new_segment()

    def packet(self, packet: av.Packet, when: datetime) -> None:
        self._decodable = self._decodable or packet.is_keyframe
        if self._stream is None or not self._decodable:
            return
        buffered = BufferedPacket(bytes(packet), packet.pts, packet.dts, packet.is_keyframe, when, self._stream)
        self.ring.add(buffered)
        # Waiting clips take every decodable packet, even one the ring's hard bounds had to drop;
        # a clip that got no pre-roll at all starts at a keyframe.
        for pending in self.pending:
            if pending.packets or buffered.keyframe:
                pending.packets.append(buffered)
                pending.size += len(buffered.data)
        self._cut_due(when)

    # Sink side
    def start(self, incident_id: int, trigger: datetime, *, poster: bool = False) -> None:
        """Record [trigger - pre-roll, trigger + post-roll) for this incident."""
        request = ClipRequest(incident_id, trigger, trigger - self.pre_roll, trigger + self.post_roll, poster)
        pre_roll = self.ring.since(request.start)
        self.pending.append(_Pending(request, pre_roll, sum(len(p.data) for p in pre_roll)))

    def awaiting_post_roll(self) -> bool:
        return bool(self.pending)

    def close(self, timeout_s: float = 120.0) -> None:
        """The analysis stopped: cut every waiting clip with what it has, and wait for the encoder."""
        for pending in self.pending:
            self._submit(pending)
        self.pending = []
        _, not_done = wait_for(self.futures, timeout=timeout_s)
        if not_done:
            log.warning("clip encoder: %d clip(s) still encoding after %.0f s", len(not_done), timeout_s)
        self._executor.shutdown(wait=False)

    def _cut_due(self, now: datetime) -> None:
        slack = timedelta(seconds=REORDER_SLACK_S)
        due = [p for p in self.pending if now >= p.request.end + slack or p.size > self.settings.max_buffer_bytes]
        for pending in due:
            self.pending.remove(pending)
            self._submit(pending)

    def _submit(self, pending: _Pending) -> None:
        self.futures = [f for f in self.futures if not f.done()]
        self.futures.append(self._executor.submit(self._produce, pending.request, pending.packets))

    def _produce(self, request: ClipRequest, packets: list[BufferedPacket]) -> None:
        """In the encoder thread: write the clip and report it; never raises (a clip is not worth a worker)."""
        began = time.perf_counter()
        try:
            clip = write_clip(packets, request, self.store.paths(request), self.settings)
        except NoFrames as exc:
            self._report_failure(request, str(exc), missing=True)
            return
        except Exception as exc:
            log.warning("clip for incident %s failed", request.incident_id, exc_info=True)
            self._report_failure(request, _describe(exc), missing=False)
            return
        log.info(
            "clip for incident %s: %d frames, %.1f s, encoded in %.2f s",
            *(request.incident_id, clip.frames, clip.duration_s, time.perf_counter() - began),
        )
        try:
            self.store.ready(request, clip)
        except Exception:
            log.exception("clip for incident %s could not be recorded; its files are removed", request.incident_id)
            _discard(clip)
            self._report_failure(request, "the clip was encoded but could not be recorded", missing=False)

    def _report_failure(self, request: ClipRequest, error: str, *, missing: bool) -> None:
        try:
            self.store.failed(request, error, missing=missing)
        except Exception:
            log.exception("clip for incident %s: its failure could not be recorded either", request.incident_id)
