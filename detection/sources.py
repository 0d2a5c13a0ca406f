"""Video sources: files (optionally looped as a simulated live camera) and network streams via PyAV.

One interface for every kind: files and file URLs, RTSP/RTSPS (over TCP by default, or UDP), and
HTTP(S) streams that FFmpeg recognises by content: MJPEG (multipart/x-mixed-replace), HLS (.m3u8)
and progressive MP4. Every open and read has a timeout, so no read blocks a worker forever.

Errors come in two kinds: SourceError (down right now: retry) and PermanentSourceError (the source
can never work as configured: an empty, truncated or corrupt file, no video, an unknown codec).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import av.container
import av.error
import av.video.stream

from detection.stream_urls import (  # noqa: F401  (re-exported: the source API in one place)
    NETWORK_SCHEMES,
    SUPPORTED_SCHEMES,
    UnsupportedSource,
    check_source_url,
    local_path,
)
from detection.types import Frame

log = logging.getLogger(__name__)

RTSP_TRANSPORTS = ("tcp", "udp")


class SourceError(RuntimeError):
    """The source could not be opened or read right now; the message is shown to operators."""


class PermanentSourceError(SourceError):
    """The source can never work without a change to it or to the camera; retrying is pointless."""


@dataclass(frozen=True)
class SourceOptions:
    fps: float = 2.0  # frames per second handed to analysis
    loop: bool = False  # replay a file forever
    realtime: bool = True  # pace files at their own speed, as a live camera would deliver them
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0  # no packet for this long: the source has stalled
    max_width: int = 1280  # larger frames are scaled down in the decoder
    # TCP survives NAT and packet loss; UDP is for cameras (or servers) that offer nothing else.
    rtsp_transport: str = "tcp"
    hwaccel: str = ""  # an FFmpeg hardware device type ("cuda", "vaapi", ...); "" decodes in software
    # How long FFmpeg studies a live stream before the first frame. Its default (up to 5 s, about
    # 3 s for a typical RTSP camera) would eat most of the reconnect budget; 1 s finds H.264/MJPEG.
    analyze_s: float = 1.0
    # A larger picture than this (width * height, as the stream declares it) is refused before any
    # frame is decoded: a broken or hostile header could otherwise make the decoder allocate
    # gigabytes per frame. 8K UHD by default.
    max_pixels: int = 7680 * 4320


def is_rtsp(url: str) -> bool:
    return url.lower().startswith(("rtsp:", "rtsps:"))


@functools.cache
def hardware_decoding(device_type: str) -> Any:
    """PyAV's HWAccel for `device_type`, or None (software) when this machine cannot use it.

    Probed once per process with an H.264 decoder: without the device, its driver, or an FFmpeg
    built for it, av.open would fail on every camera, so the fallback to software happens here.
    """
    if not device_type:
        return None
    try:
        from av.codec.hwaccel import HWAccel

        accel = HWAccel(device_type, allow_software_fallback=True)
        accel.create(av.Codec("h264", "r"))
    except Exception as exc:  # any failure means software decoding, which always works
        log.warning("hardware decoding with %r is not available (%s); decoding in software", device_type, exc)
        return None
    return accel


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise SourceError(f"file not found: {path}")  # may be a mount that is not there yet
    if path.stat().st_size == 0:
        raise PermanentSourceError(f"the file is empty (0 bytes): {path}")


def _tcp_refused(exc: av.error.FFmpegError, url: str, transport: str) -> bool:
    """Some servers (e.g. rtsp-server-perl) answer a SETUP over TCP with 400 or 461: they only do UDP."""
    refusals = (av.error.HTTPBadRequestError, av.error.HTTPOtherClientError)
    return transport == "tcp" and is_rtsp(url) and isinstance(exc, refusals)


def _open_error(url: str, exc: Exception, *, is_file: bool, elapsed_s: float, timeout_s: float) -> SourceError:
    """A human reason, and whether it is worth retrying (a file's bad bytes never get better)."""
    if isinstance(exc, av.error.ExitError) or (not is_file and elapsed_s >= timeout_s * 0.95):
        return SourceError(f"cannot open {url}: no answer within {timeout_s:g} s")
    reason = exc.strerror if isinstance(exc, av.error.FFmpegError) and exc.strerror else str(exc)
    # A file cut short in its header reads as EIO; only a missing or unreadable file may come right.
    if is_file and isinstance(exc, av.error.FFmpegError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return PermanentSourceError(f"{url} is not a playable video file ({reason})")
    return SourceError(f"cannot open {url}: {reason}")


def _av_options(url: str, options: SourceOptions, transport: str) -> dict[str, str]:
    if local_path(url) is not None:
        return {}
    av_options = {"analyzeduration": str(round(options.analyze_s * 1_000_000))}
    return (av_options | {"rtsp_transport": transport}) if is_rtsp(url) else av_options


def _open_with(target: str, url: str, options: SourceOptions, transport: str) -> av.container.InputContainer:
    return av.open(
        target,
        options=_av_options(url, options, transport),
        timeout=(options.open_timeout_s, options.read_timeout_s),
        hwaccel=hardware_decoding(options.hwaccel),
    )


def _open(url: str, options: SourceOptions) -> av.container.InputContainer:
    path = local_path(url)
    if path is not None:
        _check_file(path)
    target = str(path) if path is not None else url
    started = time.monotonic()
    try:
        try:
            return _open_with(target, url, options, options.rtsp_transport)
        except av.error.FFmpegError as exc:
            if not _tcp_refused(exc, url, options.rtsp_transport):
                raise
            log.warning("%s refused RTSP over TCP (%s); trying UDP", url, exc.strerror)
            return _open_with(target, url, options, "udp")
    except (av.error.FFmpegError, OSError) as exc:
        elapsed = time.monotonic() - started
        raise _open_error(
            url, exc, is_file=path is not None, elapsed_s=elapsed, timeout_s=options.open_timeout_s
        ) from exc


class Sampler:
    """Keeps one frame per 1/fps seconds of stream time, dropping the rest before conversion."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self.next_due: float | None = None

    def keep(self, t: float) -> bool:
        if self.next_due is None or t >= self.next_due - 1e-6:
            # Snap to the grid so the rate does not drift when frames arrive late.
            base = t if self.next_due is None or t - self.next_due > self.interval else self.next_due
            self.next_due = base + self.interval
            return True
        return False


def _frame_seconds(frame: av.VideoFrame, fallback_rate: Fraction | None, count: int) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return count / float(fallback_rate or 25)


def _scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    if width <= max_width:
        return width, height
    return max_width, round(height * max_width / width / 2) * 2


class PacketTap(Protocol):
    """Sees every compressed video packet before decoding, e.g. to keep a ring buffer for clips."""

    def stream_opened(self, stream: av.video.stream.VideoStream) -> None:
        """A (re)opened source: packets that follow belong to this stream's codec and time base."""

    def packet(self, packet: av.Packet, when: datetime) -> None:
        """One demuxed packet and the wall-clock time it stands for."""


def _packet_seconds(packet: av.Packet) -> float | None:
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


def _check_picture_size(stream: av.video.stream.VideoStream, url: str, max_pixels: int) -> None:
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > max_pixels:
        raise PermanentSourceError(
            f"{url} declares a {width}x{height} picture ({width * height:,} pixels), "
            f"over the limit of {max_pixels:,} pixels (ARGUS_MAX_SOURCE_PIXELS)"
        )


def _video_stream(
    container: av.container.InputContainer, url: str, is_file: bool, max_pixels: int
) -> av.video.stream.VideoStream:
    if not container.streams.video:
        message = f"{url} has no video stream"
        raise PermanentSourceError(message) if is_file else SourceError(message)
    stream = container.streams.video[0]
    if stream.codec_context is None:  # FFmpeg knows no decoder for it; a restart will not change that
        raise PermanentSourceError(f"{url}: unsupported video codec (this FFmpeg has no decoder for it)")
    _check_picture_size(stream, url, max_pixels)
    return stream


class _NoFrameWatchdog:
    """Packets that keep coming but never decode into a frame are a stall too (the read timeout
    only covers a source that sends nothing). Time spent by the consumer of a frame is not counted."""

    def __init__(self, limit_s: float, url: str) -> None:
        self.limit_s, self.url = limit_s, url
        self.last = time.monotonic()

    def fed(self) -> None:
        self.last = time.monotonic()

    def check(self) -> None:
        if time.monotonic() - self.last > self.limit_s:
            raise SourceError(f"{self.url} sent data but no decodable frame for {self.limit_s:g} s")


def _one_pass(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    sampler: Sampler,
    offset: float,
    wall: Callable[[float], datetime],
    tap: PacketTap | None,
    watchdog: _NoFrameWatchdog,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Demux and decode one pass over the source; yield (seconds since start, frame) for kept frames."""
    stream.thread_type = "AUTO"
    if tap is not None:
        tap.stream_opened(stream)
    first: float | None = None
    count = 0
    watchdog.fed()
    for packet in container.demux(stream):
        seconds = _packet_seconds(packet)
        if first is None and seconds is not None:
            first = seconds
        if tap is not None and packet.size and seconds is not None and first is not None:
            tap.packet(packet, wall(offset + seconds - first))
        for frame in packet.decode():
            watchdog.fed()
            t = _frame_seconds(frame, stream.average_rate, count)
            count += 1
            first = t if first is None else first
            t_rel = offset + t - first
            if sampler.keep(t_rel):
                yield t_rel, frame
                watchdog.fed()
        watchdog.check()


def _read_error(url: str, exc: av.error.FFmpegError, options: SourceOptions) -> SourceError:
    if isinstance(exc, av.error.ExitError):  # PyAV's read timeout interrupted a blocked read
        return SourceError(f"{url} stalled: no data for {options.read_timeout_s:g} s")
    if isinstance(exc, av.error.DecoderNotFoundError):
        return PermanentSourceError(f"{url}: unsupported video codec ({exc.strerror})")
    return SourceError(f"read failed on {url}: {exc.strerror or exc}")


def iter_frames(
    url: str,
    options: SourceOptions,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    tap: PacketTap | None = None,
) -> Iterator[Frame]:
    """Yield analysis frames from `url` until it ends (never, for looped files and live streams)."""
    is_file = local_path(url) is not None
    pace = is_file and options.realtime
    started = clock()
    start_dt = datetime.fromtimestamp(started, tz=UTC)

    def wall(t_rel: float) -> datetime:
        # Files stand for a live camera that started with this call; streams are live already.
        return start_dt + timedelta(seconds=t_rel) if is_file else datetime.now(tz=UTC)

    index, offset = 0, 0.0
    sampler = Sampler(options.fps)
    watchdog = _NoFrameWatchdog(options.read_timeout_s, url)
    while True:
        container = _open(url, options)
        last_t = offset
        try:
            stream = _video_stream(container, url, is_file, options.max_pixels)
            for t_rel, av_frame in _one_pass(container, stream, sampler, offset, wall, tap, watchdog):
                if pace and (wait := started + t_rel - clock()) > 0:
                    sleep(wait)
                when = wall(t_rel)
                width, height = _scaled_size(av_frame.width, av_frame.height, options.max_width)
                image = av_frame.to_ndarray(format="bgr24", width=width, height=height)
                yield Frame(index=index, time=when, image=image)
                index, last_t = index + 1, t_rel
        except av.error.FFmpegError as exc:
            raise _read_error(url, exc, options) from exc
        finally:
            container.close()
        if index == 0:
            message = f"no decodable video frames in {url}"
            raise PermanentSourceError(f"{message} (truncated or corrupt)") if is_file else SourceError(message)
        if not (is_file and options.loop):
            return
        offset = last_t + sampler.interval
