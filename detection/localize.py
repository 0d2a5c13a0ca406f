"""Localize a video file offline: every analysed frame's actors (track, box, class, score, actions)
as one JSON object per line, after one header line.

    python manage.py localize VIDEO --out FILE.jsonl     (or: python -m detection.localize ...)

Header (no "frame" key): {"video", "width", "height", "fps", "frames", "analysed_fps", "min_score",
"model": {"version", "checkpoint", "sha256"}, "track_start_score", "scene"}. Then per analysed frame:
    {"frame": 12, "time": 0.48, "actors": [{"track": 3, "box": [x1, y1, x2, y2], "class": "person",
      "score": 0.91, "actions": {"standing": 0.1, "walking": 0.8, ...}}]}
- frame: the decode index (0-based, counting every frame of the video, analysed or not);
- time: seconds since the first frame, from the frame's pts (index / fps without one);
- actors: the confirmed tracks the pipeline's tracker returns for the frame whose latest score is at
  least --min-score. A track is confirmed by its second detection, so the first analysed frame has
  none. box: that frame's detection, in pixels of the video, rounded to 0.1 px; actions: every
  action of the actor's class, with the track's smoothed score (the frame's own where the tracker
  smooths none).
- scene (only with a checkpoint that has a scene head): {"fighting": p}, the whole frame's fight
  score, updated about 10 times a second (docs/model-card.md); it needs no detected person.
Frames are analysed at --fps per second of video; by default every frame, but at most
DEFAULT_MAX_FPS per second (a 60 fps video is analysed at 30).

The file appears complete or not at all: lines go to a temporary file in the same folder, renamed
over FILE at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import av
import av.error
import numpy as np
import torch

from detection import pipeline
from detection.localizer.backend import LocalizerBackend
from detection.localizer.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from detection.sources import Sampler
from detection.tracker import Track, iou
from detection.types import ACTIONS_BY_CLASS, Detection, Frame

DEFAULT_MAX_FPS = 30.0  # the most a camera analyses too (Camera.analysis_fps)
DEFAULT_MIN_SCORE = 0.3
# Tracker time for the video's first frame: the tracker wants datetimes, only differences matter.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class LocalizeError(Exception):
    """Why the video could not be localized, in one line."""


@dataclass(frozen=True)
class LocalizeOptions:
    checkpoint: Path = DEFAULT_CHECKPOINT
    fps: float | None = None  # analysed frames per second of video; None: every frame up to DEFAULT_MAX_FPS
    device: str | None = None  # "cpu", "cuda"; None: CUDA when present
    min_score: float = DEFAULT_MIN_SCORE  # actors written: tracks whose latest score reaches this
    max_frames: int | None = None  # stop after this many analysed frames
    progress: bool = True  # a progress line on stderr
    input_size: tuple[int, int] | None = None  # (width, height) network canvas; None: the checkpoint's


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float  # the stream's average rate (25 when the file does not say)
    frames: int | None  # frames in the stream, when the container says
    duration_s: float | None  # ... and its duration, which Matroska gives where it gives no count


@dataclass(frozen=True)
class Summary:
    frames: int  # analysed frames written
    actors: int  # actor records written
    seconds: float


def localize(video: Path, out: Path, options: LocalizeOptions, *, stderr: IO[str] = sys.stderr) -> Summary:
    """Analyse `video` and write `out` (see the module's docstring); LocalizeError on any failure,
    leaving no file behind."""
    if not video.is_file():
        raise LocalizeError(f"{video}: no such video file")
    with _atomic_output(out) as sink:
        backend = load_backend(options)
        started = time.monotonic()
        with open_video(video) as (container, info):
            rate = analysed_fps(info.fps, options.fps)
            sink.write(_json(header(video, info, rate, options, backend)))
            progress = Progress(_expected_frames(info, rate, options.max_frames), stderr, enabled=options.progress)
            frames, actors = _analyse(container, info, rate, backend, options, sink, progress)
            progress.finish()
    return Summary(frames, actors, time.monotonic() - started)


def analysed_fps(video_fps: float, wanted: float | None) -> float | None:
    """The sampling rate; None analyses every frame."""
    if wanted is not None:
        return wanted if wanted < video_fps else None
    return DEFAULT_MAX_FPS if video_fps > DEFAULT_MAX_FPS else None


# --- Model -------------------------------------------------------------------------------------


def load_backend(options: LocalizeOptions) -> LocalizerBackend:
    if options.device and options.device.startswith("cuda") and not torch.cuda.is_available():
        raise LocalizeError("--device cuda: CUDA is not available on this machine")
    try:
        backend = LocalizerBackend.load(options.checkpoint, device=options.device)
    except CheckpointError as exc:
        raise LocalizeError(f"bad checkpoint: {_one_line(exc)}") from exc
    except RuntimeError as exc:  # e.g. an unknown device name
        raise LocalizeError(f"cannot load the model: {_one_line(exc)}") from exc
    if options.input_size:
        backend.config.infer_width, backend.config.infer_height = options.input_size
    return backend


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())  # torch's key mismatch reports span several lines


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def header(
    video: Path, info: VideoInfo, rate: float | None, options: LocalizeOptions, backend: LocalizerBackend
) -> dict[str, Any]:
    meta = backend.meta
    return {
        "video": str(video),
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3),
        "frames": info.frames,
        "analysed_fps": rate,  # null: every frame
        "min_score": options.min_score,
        "model": {
            "version": meta.get("version"),
            "checkpoint": str(options.checkpoint),
            "sha256": file_sha256(options.checkpoint),
        },
        "track_start_score": backend.config.track_start_score,  # the least score that started a track
        "scene": ["fighting"] if backend.scene_head is not None else [],  # the frames' scene scores
    }


# --- Decoding ----------------------------------------------------------------------------------


@contextmanager
def open_video(video: Path) -> Iterator[tuple[av.container.InputContainer, VideoInfo]]:
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise LocalizeError(f"{video}: not a decodable video ({_reason(exc)})") from exc
    with container:
        yield container, _video_info(container, video)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _video_info(container: av.container.InputContainer, video: Path) -> VideoInfo:
    if not container.streams.video:
        raise LocalizeError(f"{video}: not a decodable video (it has no video stream)")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise LocalizeError(f"{video}: not a decodable video (no decoder for its codec)")
    fps = float(stream.average_rate or stream.guessed_rate or 25)
    if stream.duration is not None and stream.time_base is not None:
        duration: float | None = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / 1_000_000 if container.duration else None
    return VideoInfo(stream.codec_context.width, stream.codec_context.height, fps, stream.frames or None, duration)


def decoded_frames(
    container: av.container.InputContainer, fps: float, rate: float | None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(decode index, seconds since the first frame, BGR image) of the frames to analyse."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    sampler = Sampler(rate) if rate else None
    first: float | None = None
    for index, frame in enumerate(container.decode(stream)):
        seconds = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else index / fps
        first = seconds if first is None else first
        t = seconds - first
        if sampler is None or sampler.keep(t):
            yield index, t, frame.to_ndarray(format="bgr24")


def _expected_frames(info: VideoInfo, rate: float | None, max_frames: int | None) -> int | None:
    """Analysed frames to expect, for the progress line (an estimate where the file gives no count)."""
    frames = info.frames or (round(info.duration_s * info.fps) if info.duration_s else None)
    total = None if frames is None else math.ceil(frames * (rate / info.fps if rate else 1.0))
    if max_frames is None:
        return total
    return max_frames if total is None else min(total, max_frames)


# --- Analysis ----------------------------------------------------------------------------------


def _analyse(
    container: av.container.InputContainer,
    info: VideoInfo,
    rate: float | None,
    backend: LocalizerBackend,
    options: LocalizeOptions,
    sink: IO[str],
    progress: Progress,
) -> tuple[int, int]:
    stream = backend.stream(fps=rate or info.fps, scene=True)
    state = pipeline.new_state(stream, [])
    frames = actors = 0
    try:
        for index, t, image in itertools.islice(decoded_frames(container, info.fps, rate), options.max_frames):
            frame = Frame(index=frames, time=EPOCH + timedelta(seconds=t), image=image)
            detections = pipeline.detect_stage(state, frame)
            tracks = pipeline.track_stage(state, frame, detections)
            records = actor_records(tracks, detections, options.min_score, info.width, info.height)
            record: dict[str, Any] = {"frame": index, "time": round(t, 4), "actors": records}
            if stream.scene_fighting is not None:
                record["scene"] = {"fighting": round(stream.scene_fighting, 4)}
            sink.write(_json(record))
            frames, actors = frames + 1, actors + len(records)
            progress.update(frames)
    except av.error.FFmpegError as exc:
        raise LocalizeError(f"decoding failed after {frames} analysed frames: {_reason(exc)}") from exc
    if frames == 0 and options.max_frames != 0:
        raise LocalizeError("not a decodable video (no frame could be decoded)")
    return frames, actors


def actor_records(
    tracks: Sequence[Track], detections: Sequence[Detection], min_score: float, width: int, height: int
) -> list[dict[str, Any]]:
    return [
        {
            "track": track.id,
            "box": pixel_box(track.box, width, height),
            "class": track.label,
            "score": round(float(track.score), 4),
            "actions": action_scores(track, detections),
        }
        for track in tracks
        if track.score >= min_score
    ]


def pixel_box(box: Sequence[float], width: int, height: int) -> list[float]:
    limits = (width, height, width, height)
    return [round(min(max(float(v), 0.0), limit), 1) for v, limit in zip(box, limits, strict=True)]


def action_scores(track: Track, detections: Sequence[Detection]) -> dict[str, float]:
    """Every action of the track's class: its smoothed score, else the matching detection's."""
    smoothed: Mapping[str, float] = getattr(track, "actions", None) or {}
    observed = smoothed or _matching_detection_actions(track, detections)
    return {name: round(float(observed.get(name, 0.0)), 4) for name in ACTIONS_BY_CLASS.get(track.label, ())}


def _matching_detection_actions(track: Track, detections: Sequence[Detection]) -> Mapping[str, float]:
    # The tracker stores the matched detection's box; the best overlap finds it for any tracker.
    same = [d for d in detections if d.label == track.label]
    if not same:
        return {}
    return max(same, key=lambda d: iou(d.box, track.box)).actions


def _json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


# --- Output and progress -----------------------------------------------------------------------


@contextmanager
def _atomic_output(path: Path) -> Iterator[IO[str]]:
    """A temporary file beside `path`, renamed over it when the block ends without an error."""
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise LocalizeError(f"cannot write {path}: {_reason(exc)}") from exc
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LocalizeError(f"cannot write {path}: {_reason(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)  # interrupted or failed: no half file
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Progress:
    """`done/total frames, fps, ETA` on one stderr line, redrawn at most 4 times a second."""

    def __init__(self, total: int | None, stream: IO[str], *, enabled: bool = True) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.started = self.last = time.monotonic()
        self.done = 0
        self.drawn = False

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.25:
            self.last = now
            self._draw(now)

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        fps = self.done / elapsed
        line = f"{self.done}/{self.total if self.total is not None else '?'} frames  {fps:5.1f} fps"
        if self.total and fps > 0:
            left = max(self.total - self.done, 0) / fps
            line += f"  ETA {int(left // 60)}:{int(left % 60):02d}"
        self.stream.write(f"\r{line}   ")
        self.stream.flush()


# --- Command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, shared by `manage.py localize` and `python -m detection.localize`."""
    parser.add_argument("video", type=Path, help="the video file to analyse")
    parser.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="localizer checkpoint")
    parser.add_argument(
        "--fps",
        type=_positive_float,
        default=None,
        help=f"analysed frames per second of video (default: every frame, at most {DEFAULT_MAX_FPS:g} per second)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--min-score", type=float, default=DEFAULT_MIN_SCORE, help="least actor score written (default %(default)s)"
    )
    parser.add_argument(
        "--input-size",
        type=_input_size,
        default=None,
        metavar="WxH",
        help="network canvas, multiples of 32 (default: the checkpoint's, 512x384)",
    )
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many analysed frames")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def _input_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 512x384") from None
    if width <= 0 or height <= 0 or width % 32 or height % 32:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive multiples of 32")
    return width, height


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def options_from(args: Mapping[str, Any]) -> LocalizeOptions:
    return LocalizeOptions(
        checkpoint=args["checkpoint"],
        fps=args["fps"],
        device=args["device"],
        min_score=args["min_score"],
        max_frames=args["max_frames"],
        progress=not args["quiet"],
        input_size=args.get("input_size"),
    )


def summary_line(summary: Summary, out: Path) -> str:
    rate = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    return f"wrote {out}: {summary.frames} frames, {summary.actors} actors in {summary.seconds:.1f} s ({rate:.1f} fps)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detection.localize", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = vars(parser.parse_args(argv))
    try:
        summary = localize(args["video"], args["out"], options_from(args))
    except LocalizeError as exc:
        print(f"localize: error: {exc}", file=sys.stderr)
        return 1
    print(summary_line(summary, args["out"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
