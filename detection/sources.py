"""Video sources: files (optionally looped as a simulated live camera) and network streams via PyAV.

Every open and read has a timeout, so no read blocks a worker forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import av
import av.container
import av.video.stream

from detection.types import Frame

log = logging.getLogger(__name__)

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
SUPPORTED_SCHEMES = NETWORK_SCHEMES | {"file"}


class UnsupportedSource(ValueError):
    """The URL can never work (bad scheme, empty); fix the camera's settings."""


class SourceError(RuntimeError):
    """The source could not be opened or read right now; the message is shown to operators."""


def check_source_url(url: str) -> str:
    """Return the URL's scheme ('file' for a plain path) or raise UnsupportedSource."""
    url = url.strip()
    if not url:
        raise UnsupportedSource("the stream URL is empty")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # a plain or Windows path
        return "file"
    if scheme not in SUPPORTED_SCHEMES:
        supported = ", ".join(sorted(SUPPORTED_SCHEMES))
        raise UnsupportedSource(f"unsupported URL scheme {scheme!r}; use one of: {supported}, or a file path")
    return scheme


def local_path(url: str) -> Path | None:
    """The file path behind a file URL or plain path, else None."""
    if check_source_url(url) != "file":
        return None
    # File URLs are percent-encoded (Path.as_uri() writes a space as %20); plain paths are not.
    return Path(unquote(urlsplit(url).path)) if url.lower().startswith("file:") else Path(url)


@dataclass(frozen=True)
class SourceOptions:
    fps: float = 2.0  # frames per second handed to analysis
    loop: bool = False  # replay a file forever
    realtime: bool = True  # pace files at their own speed, as a live camera would deliver them
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    max_width: int = 1280  # larger frames are scaled down in the decoder


def _open(url: str, options: SourceOptions) -> av.container.InputContainer:
    path = local_path(url)
    target = str(path) if path is not None else url
    if path is not None and not path.is_file():
        raise SourceError(f"file not found: {path}")
    av_options = {"rtsp_transport": "tcp"} if url.lower().startswith("rtsp") else {}
    try:
        return av.open(target, options=av_options, timeout=(options.open_timeout_s, options.read_timeout_s))
    except av.error.FFmpegError as exc:
        raise SourceError(f"cannot open {url}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise SourceError(f"cannot open {url}: {exc}") from exc


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


def _one_pass(
    container: av.container.InputContainer,
    sampler: Sampler,
    offset: float,
    wall: Callable[[float], datetime],
    tap: PacketTap | None,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Demux and decode one pass over the source; yield (seconds since start, frame) for kept frames."""
    if not container.streams.video:
        raise SourceError("the source has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if tap is not None:
        tap.stream_opened(stream)
    first: float | None = None
    count = 0
    for packet in container.demux(stream):
        seconds = _packet_seconds(packet)
        if first is None and seconds is not None:
            first = seconds
        if tap is not None and packet.size and seconds is not None and first is not None:
            tap.packet(packet, wall(offset + seconds - first))
        for frame in packet.decode():
            t = _frame_seconds(frame, stream.average_rate, count)
            count += 1
            first = t if first is None else first
            t_rel = offset + t - first
            if sampler.keep(t_rel):
                yield t_rel, frame


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
    while True:
        container = _open(url, options)
        last_t = offset
        try:
            for t_rel, av_frame in _one_pass(container, sampler, offset, wall, tap):
                if pace and (wait := started + t_rel - clock()) > 0:
                    sleep(wait)
                when = wall(t_rel)
                width, height = _scaled_size(av_frame.width, av_frame.height, options.max_width)
                image = av_frame.to_ndarray(format="bgr24", width=width, height=height)
                yield Frame(index=index, time=when, image=image)
                index, last_t = index + 1, t_rel
        except av.error.FFmpegError as exc:
            raise SourceError(f"read failed on {url}: {exc.strerror or exc}") from exc
        finally:
            container.close()
        if index == 0:
            raise SourceError(f"no decodable video frames in {url}")
        if not (is_file and options.loop):
            return
        offset = last_t + sampler.interval
