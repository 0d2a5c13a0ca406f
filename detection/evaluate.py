"""Evaluate the localizer's predictions (`python manage.py localize VIDEO --out FILE.jsonl`).

    python -m detection.evaluate detection --pred vtest.jsonl --video vtest.avi [--teacher-cache F]
    python -m detection.evaluate counting --pred caviar.jsonl --gt caviar/OneStopEnter1front_gt_people.csv
    python -m detection.evaluate clips --pred-dir DIR --labels fight/labels.csv
    python -m detection.evaluate ava --pred X.jsonl --gt gt.csv [--video-id ID]

Each prints one JSON object on stdout; bad input is reported on stderr with exit status 2.
File formats and metric definitions: docs/evaluation.md. Imports no Django; av and cv2 only when
the `detection` task decodes a video.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from detection.metrics import (
    ActorBox,
    ScoredBox,
    TruthActor,
    TruthBox,
    accuracy_at,
    average_precision,
    best_accuracy,
    clip_score,
    counting_errors,
    frame_map,
    roc_auc,
    top_fraction_mean,
    video_map,
)
from detection.types import ACTIONS, BoxXYXY, Detector

Progress = Callable[[str], None]
TeacherFactory = Callable[[float], Detector]  # score floor -> detector keeping boxes scored >= floor


class InputError(Exception):
    """Input the evaluation cannot use; the message names the file (and line) at fault."""


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- predictions (JSONL) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PredictedActor:
    track: int | None
    box: BoxXYXY  # pixels of the input video
    label: str  # the actor class ("class" in the file)
    score: float
    actions: Mapping[str, float]  # action -> probability


@dataclass(frozen=True, slots=True)
class PredictedFrame:
    frame: int  # index of the frame in decode order, 0-based
    time: float  # seconds from the first frame
    actors: tuple[PredictedActor, ...]
    scene: Mapping[str, float] = field(default_factory=dict)  # whole-frame scores ("scene"), if written


@dataclass(frozen=True, slots=True)
class Predictions:
    path: Path
    header: Mapping[str, Any] | None  # the optional first line without a "frame" key
    frames: list[PredictedFrame]

    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) from the header, when it gives both."""
        header = self.header or {}
        width, height = header.get("width"), header.get("height")
        if _is_int(width) and _is_int(height) and width > 0 and height > 0:
            return width, height
        return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 text file; a missing or unreadable file is an InputError."""
    try:
        with path.open(encoding="utf-8") as lines:
            yield from enumerate(lines, start=1)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def read_predictions(path: Path) -> Predictions:
    """Read a predictions file: one JSON object per analysed frame, after an optional header."""
    header: dict[str, Any] | None = None
    frames: list[PredictedFrame] = []
    lines_of_frame: dict[int, int] = {}
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        record = _json_object(line, where)
        if "frame" not in record:
            if header is not None or frames:
                raise InputError(f'{where}: no "frame" key (only the first line may be a header)')
            header = record
            continue
        frame = _parse_frame(record, where)
        if frame.frame in lines_of_frame:
            raise InputError(f"{where}: frame {frame.frame} again (first on line {lines_of_frame[frame.frame]})")
        lines_of_frame[frame.frame] = number
        frames.append(frame)
    return Predictions(path, header, frames)


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _parse_frame(record: Mapping[str, Any], where: str) -> PredictedFrame:
    frame, seconds, actors = record.get("frame"), record.get("time"), record.get("actors")
    if not _is_int(frame) or frame < 0:
        raise InputError(f'{where}: "frame" must be an integer >= 0, got {frame!r}')
    if not _is_number(seconds):
        raise InputError(f'{where}: "time" must be a number of seconds, got {seconds!r}')
    if not isinstance(actors, list):
        raise InputError(f'{where}: "actors" must be a list')
    parsed = tuple(_parse_actor(actor, f"{where}, actor {i}") for i, actor in enumerate(actors))
    scene = record.get("scene", {})
    if not isinstance(scene, dict) or not all(_is_probability(p) for p in scene.values()):
        raise InputError(f'{where}: "scene" must map score names to probabilities in [0, 1]')
    return PredictedFrame(frame, float(seconds), parsed, {str(k): float(v) for k, v in scene.items()})


def _parse_actor(actor: object, where: str) -> PredictedActor:
    if not isinstance(actor, dict):
        raise InputError(f"{where}: expected an object")
    track, label, score, actions = actor.get("track"), actor.get("class"), actor.get("score"), actor.get("actions")
    if track is not None and not _is_int(track):
        raise InputError(f'{where}: "track" must be an integer or null, got {track!r}')
    if not isinstance(label, str):
        raise InputError(f'{where}: "class" must be a string, got {label!r}')
    if not _is_probability(score):
        raise InputError(f'{where}: "score" must be a number in [0, 1], got {score!r}')
    if not isinstance(actions, dict) or not all(_is_probability(p) for p in actions.values()):
        raise InputError(f'{where}: "actions" must map action names to probabilities in [0, 1]')
    return PredictedActor(track, _parse_box(actor.get("box"), where), label, float(score), dict(actions))


def _is_probability(value: object) -> TypeGuard[int | float]:
    return _is_number(value) and 0.0 <= value <= 1.0


def _parse_box(box: object, where: str) -> BoxXYXY:
    if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
        raise InputError(f'{where}: "box" must be [x1, y1, x2, y2] in pixels, got {box!r}')
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 < x1 or y2 < y1:
        raise InputError(f"{where}: box {box} has x2 < x1 or y2 < y1")
    return x1, y1, x2, y2


# --- ground truth (CSV) -----------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, cells) of the non-blank rows of a CSV file."""
    reader = csv.reader(line for _, line in _text_lines(path))
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, [cell.strip() for cell in row]
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: {exc}") from None


def _float_cell(value: str, what: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {what} must be finite, got {value!r}")
    return number


def read_people_counts(path: Path) -> list[tuple[float, int]]:
    """(video_time_s, people_in_frame) rows of a CAVIAR-style `*_gt_people.csv` (header required)."""
    rows = _csv_rows(path)
    header = next(rows, None)
    if header is None or header[1][:2] != ["video_time_s", "people_in_frame"]:
        raise InputError(f"{path}: expected a header row video_time_s,people_in_frame")
    counts = []
    for number, row in rows:
        where = f"{path}, line {number}"
        if len(row) < 2 or not row[1].isdigit():
            raise InputError(f"{where}: expected seconds,count with a whole count >= 0, got {','.join(row)!r}")
        counts.append((_float_cell(row[0], "video_time_s", where), int(row[1])))
    return counts


_NEGATIVE_CLIP_LABELS = {"nofight", "no_fight", "no fight", "no-fight"}


def read_clip_labels(path: Path) -> dict[str, bool]:
    """Clip stem -> is a fight, from a labels CSV with `path` and `label` columns (fight or no_fight)."""
    rows = _csv_rows(path)
    header = next(rows, None)
    if header is None or not {"path", "label"} <= set(header[1]):
        raise InputError(f"{path}: expected a header row naming the columns path and label")
    path_at, label_at = header[1].index("path"), header[1].index("label")
    labels: dict[str, bool] = {}
    for number, row in rows:
        where = f"{path}, line {number}"
        if len(row) <= max(path_at, label_at):
            raise InputError(f"{where}: too few columns")
        stem, label = Path(row[path_at]).stem, row[label_at].lower()
        if label != "fight" and label not in _NEGATIVE_CLIP_LABELS:
            raise InputError(f"{where}: label must be fight or no_fight, got {row[label_at]!r}")
        if stem in labels:
            raise InputError(f"{where}: clip {stem} is labelled twice")
        labels[stem] = label == "fight"
    return labels


@dataclass(frozen=True, slots=True)
class AvaTruth:
    video_id: str
    keyframes: list[int]  # the annotated timestamps, in milliseconds
    actors: list[TruthActor]  # key: its keyframe; box in pixels


def timestamp_key(seconds: float) -> int:
    """Frames of the AVA-style evaluation are keyed by their timestamp in whole milliseconds."""
    return round(seconds * 1000)


def read_ava_csv(path: Path, *, size: tuple[int, int], video_id: str | None = None) -> AvaTruth:
    """Actors of one video from an AVA-style CSV (video_id,timestamp_s,x1,y1,x2,y2,action,person_id,
    coordinates in [0, 1]), scaled to pixels of a `size` = (width, height) frame; one actor per
    person and timestamp, holding the actions of all its rows."""
    rows = list(_csv_rows(path))
    if rows and len(rows[0][1]) == 8 and not _looks_numeric(rows[0][1][1]):
        rows = rows[1:]  # a header row
    chosen = _choose_video(path, {row[0] for _, row in rows if row}, video_id)
    boxes: dict[tuple[int, str], tuple[BoxXYXY, int]] = {}
    actions: dict[tuple[int, str], set[str]] = {}
    for number, row in rows:
        where = f"{path}, line {number}"
        if len(row) != 8:
            raise InputError(f"{where}: expected 8 columns video_id,timestamp_s,x1,y1,x2,y2,action,person_id")
        if row[0] != chosen:
            continue
        key = (timestamp_key(_float_cell(row[1], "timestamp_s", where)), row[7])
        box = _normalised_box(row[2:6], size, where)
        first = boxes.setdefault(key, (box, number))
        if not np.allclose(first[0], box, atol=1e-3):
            raise InputError(f"{where}: person {row[7]} has another box at this timestamp on line {first[1]}")
        actions.setdefault(key, set()).add(_action_name(row[6], where))
    actors = [TruthActor(k[0], boxes[k][0], frozenset(actions[k]), actor_id=k[1]) for k in boxes]
    return AvaTruth(chosen, sorted({k[0] for k in boxes}), actors)


def _looks_numeric(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _choose_video(path: Path, video_ids: set[str], video_id: str | None) -> str:
    if not video_ids:
        raise InputError(f"{path}: no annotation rows")
    if video_id is not None:
        if video_id not in video_ids:
            raise InputError(f"{path}: no rows for video {video_id!r} (it has {sorted(video_ids)})")
        return video_id
    if len(video_ids) != 1:
        raise InputError(f"{path}: holds videos {sorted(video_ids)}; choose one with --video-id")
    return next(iter(video_ids))


def _normalised_box(cells: Sequence[str], size: tuple[int, int], where: str) -> BoxXYXY:
    x1, y1, x2, y2 = (_float_cell(c, "a box coordinate", where) for c in cells)
    if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
        raise InputError(f"{where}: box {cells} must be normalised: 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    width, height = size
    return x1 * width, y1 * height, x2 * width, y2 * height


def _action_name(value: str, where: str) -> str:
    """An action name, or a 0-based index into detection.types.ACTIONS."""
    if value.isdigit():
        if int(value) >= len(ACTIONS):
            raise InputError(f"{where}: action index {value} is out of range 0..{len(ACTIONS) - 1}")
        return ACTIONS[int(value)]
    if value not in ACTIONS:
        raise InputError(f"{where}: unknown action {value!r}; expected one of {', '.join(ACTIONS)} or its index")
    return value


# --- teacher boxes for person-detection AP ------------------------------------------------------

TeacherBoxes = dict[int, list[tuple[BoxXYXY, float]]]  # frame index -> (box, score)


def ssdlite_teacher(score_floor: float) -> Detector:
    """The SSDLite person detector, keeping boxes scored >= score_floor (cv2 loads only here)."""
    from detection.detectors import DetectorUnavailable, SsdlitePersonDetector

    try:
        return SsdlitePersonDetector(score_threshold=score_floor)
    except DetectorUnavailable as exc:
        raise InputError(f"the teacher is unavailable: {exc}") from None


def decode_frames(video: Path, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR image) for the wanted frame indices, in decode order (index 0 = first frame)."""
    import av
    import av.error

    if not video.is_file():
        raise InputError(f"no such file: {video}")
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise InputError(f"{video} has no video stream")
            container.streams.video[0].thread_type = "AUTO"
            last = max(wanted, default=-1)
            for index, frame in enumerate(container.decode(video=0)):
                if index > last:
                    return
                if index in wanted:
                    yield index, frame.to_ndarray(format="bgr24")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot decode {video}: {exc}") from None


def _video_identity(video: Path) -> dict[str, Any]:
    stat = video.stat()
    return {"video": str(video.resolve()), "video_bytes": stat.st_size, "video_mtime_ns": stat.st_mtime_ns}


@dataclass
class TeacherRun:
    """Teacher boxes for some frames of one video, as stored in a --teacher-cache file."""

    identity: dict[str, Any]  # teacher name, score floor, video path/size/mtime, frame size
    boxes: TeacherBoxes

    def usable_for(self, identity: Mapping[str, Any]) -> bool:
        """Same teacher, floor and video file (its path, size and modification time)."""
        return all(self.identity.get(key) == value for key, value in identity.items())

    def write(self, path: Path) -> None:
        """Write atomically, so an interrupted run leaves the old cache (or none), never half a file."""
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(json.dumps(self.identity) + "\n")
            for index in sorted(self.boxes):
                rows = [[*box, score] for box, score in self.boxes[index]]
                out.write(json.dumps({"frame": index, "boxes": rows}) + "\n")
        os.replace(temporary, path)


def read_teacher_cache(path: Path) -> TeacherRun | None:
    if not path.exists():
        return None
    identity: dict[str, Any] | None = None
    boxes: TeacherBoxes = {}
    for number, line in _text_lines(path):
        where = f"{path}, line {number} (delete the cache to recompute it)"
        record = _json_object(line, where)
        if identity is None:
            identity = record
            continue
        try:
            boxes[int(record["frame"])] = [((r[0], r[1], r[2], r[3]), float(r[4])) for r in record["boxes"]]
        except (KeyError, TypeError, ValueError, IndexError):
            raise InputError(f'{where}: expected {{"frame": N, "boxes": [[x1, y1, x2, y2, score], ...]}}') from None
    return TeacherRun(identity or {}, boxes)


def teacher_boxes(
    video: Path,
    frames: set[int],
    *,
    score_floor: float,
    make_teacher: TeacherFactory,
    cache: Path | None,
    progress: Progress,
) -> TeacherRun:
    """Teacher boxes scored >= score_floor on the given frames: from the cache where it has them,
    else by running the teacher (and then refreshing the cache)."""
    if not video.is_file():
        raise InputError(f"no such file: {video}")
    teacher = make_teacher(score_floor)
    identity = {"teacher": teacher.name, "score_floor": score_floor, **_video_identity(video)}
    run = read_teacher_cache(cache) if cache else None
    if run is None or not run.usable_for(identity):
        if run is not None:
            progress(f"teacher cache {cache} is for another video or teacher setting: recomputing it")
        run = TeacherRun(identity, {})
    todo = frames - run.boxes.keys()
    if todo:
        _run_teacher(video, todo, teacher, run, progress)
        if cache:
            run.write(cache)
    run.boxes = {i: [(box, s) for box, s in run.boxes[i] if s >= score_floor] for i in frames}
    return run


def _run_teacher(video: Path, todo: set[int], teacher: Detector, run: TeacherRun, progress: Progress) -> None:
    started = last_report = time.monotonic()
    done = 0
    for index, image in decode_frames(video, todo):
        run.identity["frame_size"] = [image.shape[1], image.shape[0]]
        run.boxes[index] = [(d.box, d.score) for d in teacher.detect(image)]
        done += 1
        if time.monotonic() - last_report >= 2.0:
            last_report = time.monotonic()
            progress(f"teacher: {done}/{len(todo)} frames ({last_report - started:.0f} s)")
    if missing := sorted(todo - run.boxes.keys()):
        raise InputError(f"the predictions name frames {_ranges(missing)} that {video} does not have")
    progress(f"teacher: {done} frames in {time.monotonic() - started:.1f} s")


def _ranges(numbers: Sequence[int]) -> str:
    return f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}..{numbers[-1]} ({len(numbers)} frames)"


# --- the four evaluations -----------------------------------------------------------------------


def evaluate_detection(
    predictions: Predictions,
    video: Path,
    *,
    make_teacher: TeacherFactory = ssdlite_teacher,
    min_score: float = 0.6,
    ignore_min_score: float = 0.3,
    ignore: bool = True,
    cache: Path | None = None,
    iou_threshold: float = 0.5,
    progress: Progress = stderr_progress,
) -> dict[str, Any]:
    """AP of the predicted person boxes against the teacher's confident boxes on the same frames;
    with `ignore`, predictions on the teacher's uncertain boxes (ignore_min_score, min_score) count
    neither way."""
    frames = {f.frame for f in predictions.frames}
    floor = min(min_score, ignore_min_score)  # with or without `ignore`, so one cache serves both
    run = teacher_boxes(video, frames, score_floor=floor, make_teacher=make_teacher, cache=cache, progress=progress)
    _check_frame_size(predictions, run.identity.get("frame_size"), video)
    truths = teacher_truths(run, min_score=min_score, ignore_min_score=ignore_min_score, ignore=ignore)
    detections = [
        ScoredBox(f.frame, a.box, a.score) for f in predictions.frames for a in f.actors if a.label == "person"
    ]
    result = average_precision(detections, truths, iou_threshold=iou_threshold)
    return {
        "task": "detection",
        "predictions": str(predictions.path),
        "video": str(video),
        "frames": len(frames),
        "iou_threshold": iou_threshold,
        "teacher": {
            "detector": run.identity["teacher"],
            "min_score": min_score,
            "ignore_between": [ignore_min_score, min_score] if ignore else None,
            "boxes": sum(not t.ignore for t in truths),
            "ignore_boxes": sum(t.ignore for t in truths),
        },
        **result.as_dict(),
    }


def teacher_truths(run: TeacherRun, *, min_score: float, ignore_min_score: float, ignore: bool) -> list[TruthBox]:
    """The teacher's boxes from `min_score` as truths; with `ignore`, those above `ignore_min_score`
    as 'ignore' truths (detections on them count neither way)."""
    return [
        TruthBox(index, box, ignore=score < min_score)
        for index, boxes in run.boxes.items()
        for box, score in boxes
        if score >= min_score or (ignore and score > ignore_min_score)
    ]


def _check_frame_size(predictions: Predictions, frame_size: object, video: Path) -> None:
    declared = predictions.frame_size()
    if declared and isinstance(frame_size, list) and tuple(frame_size) != declared:
        raise InputError(
            f"{predictions.path} declares {declared[0]}x{declared[1]} frames "
            f"but {video} decodes to {frame_size[0]}x{frame_size[1]}"
        )


def _check_written_from(predictions: Predictions, min_score: float) -> None:
    """A file `localize` wrote from a higher score than `min_score` lacks actors the count needs:
    counting it would under-count without saying so."""
    written = (predictions.header or {}).get("min_score")
    if _is_number(written) and written > min_score:
        raise InputError(
            f"{predictions.path} holds actors scored {written} or more only: it cannot be counted from {min_score}"
            f" (localize the video again with --min-score {min_score} or lower)"
        )


def person_count(frame: PredictedFrame, min_score: float) -> int:
    return sum(a.label == "person" and a.score >= min_score for a in frame.actors)


def evaluate_counting(predictions: Predictions, truth_path: Path, *, min_score: float = 0.5) -> dict[str, Any]:
    """Counting error against people counts given once a second (see `metrics.counting_errors`)."""
    _check_written_from(predictions, min_score)
    truth = read_people_counts(truth_path)
    counts = [(f.time, person_count(f, min_score)) for f in predictions.frames]
    return {
        "task": "counting",
        "predictions": str(predictions.path),
        "truth": str(truth_path),
        "min_score": min_score,
        "frames": len(counts),
        **counting_errors(truth, counts).as_dict(),
    }


def evaluate_clips(
    prediction_dir: Path,
    labels_path: Path,
    *,
    action: str = "fighting",
    threshold: float = 0.5,
    score: str = "actors",
) -> dict[str, Any]:
    """Clip classification by `metrics.clip_score` (score "actors") or by the frames' scene score of
    `action` (score "scene", `scene_clip_score`): ROC AUC, accuracy at `threshold`, and the best
    threshold on these same labels (optimistic)."""
    labels = read_clip_labels(labels_path)
    if not prediction_dir.is_dir():
        raise InputError(f"no such directory: {prediction_dir}")
    scores, truths, missing = [], [], []
    for stem, positive in labels.items():
        path = prediction_dir / f"{stem}.jsonl"
        if not path.is_file():
            missing.append(stem)
            continue
        frames = read_predictions(path).frames
        scores.append(scene_clip_score(frames, action, path) if score == "scene" else clip_score(frames, action))
        truths.append(positive)
    if not scores:
        raise InputError(f"{prediction_dir} holds no <clip>.jsonl for any clip of {labels_path}")
    best = best_accuracy(scores, truths)
    assert best is not None  # scores is not empty
    return {
        "task": "clips",
        "action": action,
        "score": score,
        "n": len(scores),
        "positives": sum(truths),
        "negatives": len(truths) - sum(truths),
        "auc": roc_auc(scores, truths),
        "threshold": threshold,
        "accuracy": accuracy_at(scores, truths, threshold),
        "optimistic_best_threshold": {
            "threshold": best[0],
            "accuracy": best[1],
            "note": "chosen on these same labels: an upper bound, not a held-out result",
        },
        "missing_clips": missing,
        "unlabelled_predictions": sorted(p.stem for p in prediction_dir.glob("*.jsonl") if p.stem not in labels),
    }


def scene_clip_score(frames: Sequence[PredictedFrame], action: str, path: Path) -> float:
    """The mean of the top quarter of the frames' scene scores of `action` (`metrics.top_fraction_mean`)."""
    missing = [f.frame for f in frames if action not in f.scene]
    if missing:
        raise InputError(
            f'{path}: frame {missing[0]} has no scene "{action}" score'
            " (localize it with a checkpoint that has a scene head)"
        )
    return top_fraction_mean([f.scene[action] for f in frames])


def keyframe_predictions(
    frames: Sequence[PredictedFrame], keyframes: Sequence[int], max_gap_s: float | None = None
) -> dict[int, PredictedFrame]:
    """For each keyframe (timestamp in ms), the analysed frame nearest in time, if within max_gap_s
    (default: half the median interval between analysed frames, 0.5 s for a single frame)."""
    if not frames:
        return {}
    times = np.array([f.time for f in frames])
    if max_gap_s is None:
        max_gap_s = float(np.median(np.diff(np.sort(times)))) / 2 if len(frames) > 1 else 0.5
    chosen = {}
    for key in keyframes:
        nearest = int(np.argmin(np.abs(times - key / 1000)))
        if abs(times[nearest] - key / 1000) <= max_gap_s + 1e-9:
            chosen[key] = frames[nearest]
    return chosen


def evaluate_ava(
    predictions: Predictions,
    truth_path: Path,
    *,
    video_id: str | None = None,
    size: tuple[int, int] | None = None,
    max_gap_s: float | None = None,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """frame-mAP and video-mAP on the keyframes (timestamps) of an AVA-style CSV."""
    size = size or predictions.frame_size()
    if size is None:
        raise InputError(f"{predictions.path} has no header with width and height: pass --size WIDTHxHEIGHT")
    truth = read_ava_csv(truth_path, size=size, video_id=video_id)
    chosen = keyframe_predictions(predictions.frames, truth.keyframes, max_gap_s)
    actors = [ActorBox(k, a.box, a.score, a.actions, a.track) for k, f in chosen.items() for a in f.actors]
    tubes = video_map(actors, truth.actors, ACTIONS)
    return {
        "task": "ava",
        "predictions": str(predictions.path),
        "truth": str(truth_path),
        "video_id": truth.video_id,
        "keyframes": len(truth.keyframes),
        "keyframes_without_prediction": len(truth.keyframes) - len(chosen),
        "frame_map": frame_map(actors, truth.actors, ACTIONS, iou_threshold=iou_threshold).as_dict(),
        "video_map": {str(t): r.as_dict() for t, r in tubes.items()},
    }


# --- command line -------------------------------------------------------------------------------


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 768x576")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detection.evaluate",
        description="Evaluate localizer predictions (JSONL); prints one JSON object. See docs/evaluation.md.",
    )
    tasks = parser.add_subparsers(dest="task", required=True)

    detection = tasks.add_parser("detection", help="person-detection AP against the SSDLite teacher's boxes")
    detection.add_argument("--pred", type=Path, required=True, help="predictions JSONL")
    detection.add_argument("--video", type=Path, required=True, help="the video the predictions are for")
    detection.add_argument("--teacher-min-score", type=_probability, default=0.6, help="confident teacher boxes")
    detection.add_argument(
        "--teacher-ignore-min-score", type=_probability, default=0.3, help="teacher boxes above it are 'ignore'"
    )
    detection.add_argument(
        "--ignore", action=argparse.BooleanOptionalAction, default=True, help="use 'ignore' teacher boxes"
    )
    detection.add_argument("--teacher-cache", type=Path, help="JSONL file keeping the teacher's boxes between runs")
    detection.add_argument("--iou", type=_probability, default=0.5, help="IoU for a match")

    counting = tasks.add_parser("counting", help="people-count error against counts given once a second")
    counting.add_argument("--pred", type=Path, required=True)
    counting.add_argument("--gt", type=Path, required=True, help="video_time_s,people_in_frame CSV")
    counting.add_argument("--min-score", type=_probability, default=0.5, help="person actors counted from this score")

    clips = tasks.add_parser("clips", help="clip-level ROC AUC and accuracy (fight / no fight)")
    clips.add_argument("--pred-dir", type=Path, required=True, help="holds <clip stem>.jsonl per clip")
    clips.add_argument("--labels", type=Path, required=True, help="labels CSV with path and label columns")
    clips.add_argument("--action", default="fighting", choices=ACTIONS)
    clips.add_argument("--threshold", type=_probability, default=0.5, help="clip score from which a clip is a fight")
    clips.add_argument(
        "--score",
        default="actors",
        choices=("actors", "scene"),
        help="actors: score x action of the best actor per frame; scene: the frames' scene score (needs a scene head)",
    )

    ava = tasks.add_parser("ava", help="frame-mAP and video-mAP against an AVA-style CSV")
    ava.add_argument("--pred", type=Path, required=True)
    ava.add_argument("--gt", type=Path, required=True, help="video_id,timestamp_s,x1,y1,x2,y2,action,person_id")
    ava.add_argument("--video-id", help="the CSV's video the predictions are for (needed if it holds several)")
    ava.add_argument("--size", type=_size, help="WIDTHxHEIGHT of the video, when the predictions have no header")
    ava.add_argument("--max-gap", type=float, help="seconds between a keyframe and its analysed frame at most")
    return parser


def run(args: argparse.Namespace, make_teacher: TeacherFactory, progress: Progress) -> dict[str, Any]:
    if args.task == "detection":
        return evaluate_detection(
            read_predictions(args.pred),
            args.video,
            make_teacher=make_teacher,
            min_score=args.teacher_min_score,
            ignore_min_score=args.teacher_ignore_min_score,
            ignore=args.ignore,
            cache=args.teacher_cache,
            iou_threshold=args.iou,
            progress=progress,
        )
    if args.task == "counting":
        return evaluate_counting(read_predictions(args.pred), args.gt, min_score=args.min_score)
    if args.task == "clips":
        return evaluate_clips(
            args.pred_dir, args.labels, action=args.action, threshold=args.threshold, score=args.score
        )
    return evaluate_ava(
        read_predictions(args.pred), args.gt, video_id=args.video_id, size=args.size, max_gap_s=args.max_gap
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    make_teacher: TeacherFactory = ssdlite_teacher,
    progress: Progress = stderr_progress,
) -> int:
    """Run one evaluation; 0 with its JSON on stdout, 2 with the reason on stderr for bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.task == "detection" and args.teacher_ignore_min_score >= args.teacher_min_score:
        parser.error("--teacher-ignore-min-score must be below --teacher-min-score")
    try:
        result = run(args, make_teacher, progress)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
