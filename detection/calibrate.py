"""Choose the score from which a localizer checkpoint's detections start tracks, on footage of your own.

    python -m detection.calibrate VIDEO [--checkpoint CKPT] [--scores 0.1,0.15,0.2,0.3,0.4,0.5]
        [--teacher-cache FILE] [--fps N] [--max-frames N] [--write OUT.pt]

The localizer runs over VIDEO once and every analysed frame's detections are kept. The camera
tracker is then replayed over them with each candidate start score, and the tracks' person boxes
are scored as `python -m detection.evaluate detection` scores a `localize --min-score 0.1` file:
AP against the SSDLite teacher's confident boxes (>= 0.6; its boxes scored 0.3-0.6 count neither
way). The start score with the best F1 (over every count threshold) is chosen: a start score too
high drops people the model is unsure of, one too low starts tracks on clutter. Prints one JSON
object; `--write` saves a copy of the checkpoint with the chosen score (and this run in its record).

Calibrate on footage like your cameras', and never on footage you then report figures for.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from detection.evaluate import (
    InputError,
    Progress,
    TeacherFactory,
    ssdlite_teacher,
    stderr_progress,
    teacher_boxes,
    teacher_truths,
)
from detection.localize import (
    EPOCH,
    LocalizeError,
    LocalizeOptions,
    VideoInfo,
    analysed_fps,
    decoded_frames,
    load_backend,
    open_video,
    pixel_box,
)
from detection.localizer.backend import LocalizerBackend
from detection.localizer.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, save_checkpoint
from detection.metrics import ScoredBox, average_precision, best_f1, match_boxes
from detection.tracker import ByteTracker, TrackerConfig
from detection.types import Detection

DEFAULT_SCORES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
WRITTEN_FROM = 0.1  # tracks scored below it are not ranked, as `make evaluate` writes vtest.avi


@dataclass(frozen=True)
class RecordedFrame:
    index: int  # decode index, as `localize` writes it
    time: float  # seconds since the first frame
    detections: list[Detection]


@dataclass(frozen=True)
class Recording:
    video: Path
    info: VideoInfo
    frames: list[RecordedFrame]


def record(
    video: Path, backend: LocalizerBackend, *, fps: float | None, max_frames: int | None, progress: Progress
) -> Recording:
    """Every analysed frame's detections, from one pass of the localizer over `video`."""
    if not video.is_file():
        raise InputError(f"no such file: {video}")
    frames: list[RecordedFrame] = []
    stream = backend.stream()
    with open_video(video) as (container, info):
        decoded = decoded_frames(container, info.fps, analysed_fps(info.fps, fps))
        for index, t, image in itertools.islice(decoded, max_frames):
            frames.append(RecordedFrame(index, t, stream.detect(image)))
            if len(frames) % 100 == 0:
                progress(f"localizer: {len(frames)} frames")
    if not frames:
        raise InputError(f"{video}: no frame could be decoded")
    progress(f"localizer: {len(frames)} frames")
    return Recording(video, info, frames)


def tracked_people(recording: Recording, start_score: float) -> list[ScoredBox]:
    """The person boxes `localize --min-score 0.1` would write with tracks started from `start_score`."""
    tracker = ByteTracker(TrackerConfig(high_thresh=start_score))
    width, height = recording.info.width, recording.info.height
    boxes = []
    for frame in recording.frames:
        for track in tracker.update(frame.detections, EPOCH + timedelta(seconds=frame.time)):
            if track.label == "person" and track.score >= WRITTEN_FROM:
                box = tuple(pixel_box(track.box, width, height))  # rounded as localize writes them
                boxes.append(ScoredBox(frame.index, box, round(float(track.score), 4)))  # type: ignore[arg-type]
    return boxes


def candidate(boxes: list[ScoredBox], truths: list[Any], start_score: float) -> dict[str, Any]:
    ap = average_precision(boxes, truths)
    scores, outcomes = match_boxes(boxes, truths)
    f1 = best_f1(scores, outcomes, ap.n_truth)
    return {
        "start_score": start_score,
        "ap": ap.ap,
        "true_positives": ap.true_positives,
        "false_positives": ap.false_positives,
        "best_f1": round(f1.f1, 4),
        "best_f1_from_score": f1.min_score,
    }


def choose(candidates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best F1; on a tie the better AP, then the higher start score (fewer tracks on clutter)."""
    return max(candidates, key=lambda c: (c["best_f1"], c["ap"] or 0.0, c["start_score"]))


def calibrate(
    video: Path,
    *,
    checkpoint: Path = DEFAULT_CHECKPOINT,
    scores: Sequence[float] = DEFAULT_SCORES,
    fps: float | None = None,
    max_frames: int | None = None,
    cache: Path | None = None,
    make_teacher: TeacherFactory = ssdlite_teacher,
    progress: Progress = stderr_progress,
) -> dict[str, Any]:
    try:  # on the CPU, so that a start score of 0.2 reproduces `make evaluate`'s vtest figure
        backend = load_backend(LocalizeOptions(checkpoint=checkpoint, device="cpu"))
    except LocalizeError as exc:
        raise InputError(str(exc)) from None
    recording = record(video, backend, fps=fps, max_frames=max_frames, progress=progress)
    frames = {f.index for f in recording.frames}
    run = teacher_boxes(video, frames, score_floor=0.3, make_teacher=make_teacher, cache=cache, progress=progress)
    truths = teacher_truths(run, min_score=0.6, ignore_min_score=0.3, ignore=True)
    candidates = [candidate(tracked_people(recording, s), truths, s) for s in sorted(set(scores))]
    chosen = choose(candidates)
    return {
        "task": "calibrate",
        "video": str(video),
        "checkpoint": str(checkpoint),
        "version": backend.meta.get("version"),
        "frames": len(recording.frames),
        "teacher": {"detector": run.identity["teacher"], "min_score": 0.6, "ignore_between": [0.3, 0.6]},
        "boxes": sum(not t.ignore for t in truths),
        "current_start_score": backend.config.track_start_score,
        "candidates": candidates,
        "chosen_start_score": chosen["start_score"],
    }


def write_calibrated(checkpoint: Path, out: Path, result: dict[str, Any]) -> None:
    """A copy of `checkpoint` whose tracks start from the chosen score; the run is kept in its record."""
    model, meta = load_checkpoint(checkpoint)
    model.config.track_start_score = float(result["chosen_start_score"])
    record = dict(meta.get("record") or {})
    record["track_start_score_calibration"] = result
    save_checkpoint(model, out, version=str(meta["version"]), record=record, scene_head=meta.get("scene_head"))


def _scores(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of scores") from None
    if not values or not all(0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: scores must lie in (0, 1]")
    if min(values) < WRITTEN_FROM:
        raise argparse.ArgumentTypeError(f"{text!r}: the localizer keeps no detection below {WRITTEN_FROM}")
    return values


def _frame_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detection.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, help="footage like your cameras' (not footage you report figures on)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--scores", type=_scores, default=list(DEFAULT_SCORES), help="candidates, e.g. 0.2,0.5")
    parser.add_argument("--fps", type=_positive, help="analysed frames per second of video (default: as localize)")
    parser.add_argument("--max-frames", type=_frame_count, help="stop after this many analysed frames")
    parser.add_argument("--teacher-cache", type=Path, help="JSONL file keeping the teacher's boxes between runs")
    parser.add_argument("--write", type=Path, metavar="OUT.pt", help="save the checkpoint with the chosen start score")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    make_teacher: TeacherFactory = ssdlite_teacher,
    progress: Progress = stderr_progress,
) -> int:
    """0 with the JSON on stdout; 2 with the reason on stderr for bad input."""
    args = build_parser().parse_args(argv)
    try:
        result = calibrate(
            args.video,
            checkpoint=args.checkpoint,
            scores=args.scores,
            fps=args.fps,
            max_frames=args.max_frames,
            cache=args.teacher_cache,
            make_teacher=make_teacher,
            progress=progress,
        )
    except (InputError, LocalizeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.write:
        try:
            write_calibrated(args.checkpoint, args.write, result)
        except OSError as exc:
            print(f"error: cannot write {args.write}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        result["written"] = str(args.write)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
