"""Training labels for real footage without boxes: teacher boxes, motion-found vehicles and
kinematic actions from linked tracks, plus clip-level weak labels (fight / no fight).

Every label is either known (0 or 1) or left out (unknown): ambiguous cases are not guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from detection.types import PERSON_ACTIONS

log = logging.getLogger(__name__)

LABEL_FPS = 10.0  # frames per second labelled (and available to training views)
TEACHER_POSITIVE = 0.5  # teacher boxes at or above: actors; between TEACHER_MIN and this: ignored regions
TEACHER_MIN = 0.15  # the teacher misses many people in fight clips: keep its weak boxes as ignored

# Speed in body heights per second (perspective-free enough for fixed cameras).
STANDING_MAX, WALKING_MIN, WALKING_MAX, RUNNING_MIN = 0.25, 0.4, 1.3, 1.8
LYING_MIN_ASPECT, UPRIGHT_MAX_ASPECT = 1.3, 0.9  # width / height
FALL_WINDOW_S = 1.2
# Vehicles: speed in box widths per second.
VEHICLE_STOPPED_MAX, VEHICLE_MOVING_MIN = 0.05, 0.15
MIN_TRACK_SPAN_S = 0.4  # kinematic labels need this much track around the frame


@dataclass
class LabelledBox:
    box: tuple[float, float, float, float]  # source pixels
    label: str  # person | vehicle
    score: float
    ignore: bool = False  # a region neither positive nor negative (uncertain teacher box)
    track: int = -1
    actions: dict[str, float] = field(default_factory=dict)  # known labels only


@dataclass
class LabelledFrame:
    index: int  # decode index in the video
    time: float
    boxes: list[LabelledBox]


@dataclass
class VideoLabels:
    path: str
    width: int
    height: int
    fps: float
    frames: list[LabelledFrame]
    vehicles_labelled: bool  # False: vehicle absence is unknown here (the loss ignores that class)
    clip_label: str | None = None  # fight | noFight | None


def read_frames(path: Path, step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """(decode index, seconds, BGR frame) for every `step`-th frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = None
        for index, frame in enumerate(container.decode(stream)):
            seconds = float(frame.pts * stream.time_base) if frame.pts is not None and stream.time_base else None
            if seconds is not None:
                base = seconds if base is None else base
                seconds -= base
            if index % step == 0:
                fps = float(stream.average_rate or 25)
                yield index, seconds if seconds is not None else index / fps, frame.to_ndarray(format="bgr24")


def video_fps(path: Path) -> float:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else 25.0


Box = tuple[float, float, float, float]
Teacher = Callable[[np.ndarray], list[tuple[Box, float]]]


def ssdlite_teacher() -> Teacher:
    from detection.detectors import SsdlitePersonDetector

    detector = SsdlitePersonDetector(score_threshold=TEACHER_MIN)
    return tiled_teacher(lambda image: [(d.box, d.score) for d in detector.detect(image)])


# The teacher sees each frame squeezed to 300x300, where a person under about 60 source pixels
# is too small for it. It also looks at 2x2 overlapping tiles (1.6x closer on a 4:3 frame);
# the same person found twice keeps its best score.
TILE_GRID = 2
TILE_OVERLAP = 0.25  # share of a tile's size shared with its neighbour
TILE_MERGE_IOU = 0.5
TILE_EDGE_PX = 2.0  # a box this close to a tile's inner edge is a cut-off person: dropped


def tile_windows(width: int, height: int, grid: int = TILE_GRID, overlap: float = TILE_OVERLAP) -> list[Box]:
    """Overlapping tiles covering the frame, `grid` x `grid`, as (x1, y1, x2, y2) pixels."""
    tile_w, tile_h = width * (1 + overlap) / grid, height * (1 + overlap) / grid
    step_x = (width - tile_w) / max(grid - 1, 1)
    step_y = (height - tile_h) / max(grid - 1, 1)
    return [
        (round(i * step_x), round(j * step_y), round(i * step_x + tile_w), round(j * step_y + tile_h))
        for j in range(grid)
        for i in range(grid)
    ]


def tiled_teacher(base: Teacher, grid: int = TILE_GRID) -> Teacher:
    """`base` on the whole frame and on its tiles, merged."""

    def look(image: np.ndarray) -> list[tuple[Box, float]]:
        height, width = image.shape[:2]
        found = list(base(image))
        for x1, y1, x2, y2 in tile_windows(width, height, grid):
            for (bx1, by1, bx2, by2), score in base(image[y1:y2, x1:x2]):
                box = (bx1 + x1, by1 + y1, bx2 + x1, by2 + y1)
                if not _cut_by_tile(box, (x1, y1, x2, y2), width, height):
                    found.append((box, score))
        return merge_boxes(found)

    return look


def _cut_by_tile(box: Box, tile: Box, width: int, height: int) -> bool:
    """Touches an edge of the tile that is not an edge of the frame."""
    x1, y1, x2, y2 = tile
    return (
        (x1 > 0 and box[0] <= x1 + TILE_EDGE_PX)
        or (y1 > 0 and box[1] <= y1 + TILE_EDGE_PX)
        or (x2 < width and box[2] >= x2 - TILE_EDGE_PX)
        or (y2 < height and box[3] >= y2 - TILE_EDGE_PX)
    )


def merge_boxes(found: list[tuple[Box, float]], min_iou: float = TILE_MERGE_IOU) -> list[tuple[Box, float]]:
    """Greedy NMS: the best-scored box of each overlapping group."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(found, key=lambda item: -item[1]):
        if all(iou(box, other) < min_iou for other, _ in kept):
            kept.append((box, score))
    return kept


def label_video(
    path: Path, teacher: Teacher, *, clip_label: str | None = None, find_vehicles: bool = False
) -> VideoLabels:
    fps = video_fps(path)
    step = max(1, round(fps / LABEL_FPS))
    subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
    frames: list[LabelledFrame] = []
    width = height = 0
    previous: np.ndarray | None = None
    for index, seconds, image in read_frames(path, 1):
        height, width = image.shape[:2]
        if find_vehicles and previous is not None and _is_cut(previous, image):
            # An edited video: the background model of the last shot means nothing now.
            subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
        previous = image
        motion = subtractor.apply(image) if find_vehicles else None
        if index % step:
            continue
        people = [LabelledBox(b, "person", s, ignore=s < TEACHER_POSITIVE) for b, s in teacher(image)]
        vehicles = motion_vehicles(motion, people) if motion is not None and index >= 10 else []
        frames.append(LabelledFrame(index, seconds, people + vehicles))
    # Vehicle absence is assumed where none were looked for: fight clips are people scenes.
    labels = VideoLabels(str(path), width, height, fps, frames, True, clip_label)
    link_tracks(labels)
    drop_short_vehicle_tracks(labels)
    add_kinematic_actions(labels)
    add_clip_actions(labels)
    return labels


def _is_cut(previous: np.ndarray, image: np.ndarray) -> bool:
    small = [cv2.resize(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), (64, 36)).astype(np.float32) for x in (previous, image)]
    return float(np.abs(small[0] - small[1]).mean()) > 40.0


def drop_short_vehicle_tracks(labels: VideoLabels, min_frames: int = 3) -> None:
    """A motion blob seen on fewer than `min_frames` labelled frames is noise (a light, a shadow), not a
    vehicle: it becomes an ignored region rather than a label."""
    lengths: dict[int, int] = {}
    for frame in labels.frames:
        for box in frame.boxes:
            lengths[box.track] = lengths.get(box.track, 0) + 1
    for frame in labels.frames:
        for box in frame.boxes:
            if box.label == "vehicle" and lengths[box.track] < min_frames:
                box.ignore = True


def motion_vehicles(mask: np.ndarray, people: list[LabelledBox]) -> list[LabelledBox]:
    """Moving blobs shaped like vehicles (wider than tall, large) that are not a detected person.
    A rider's person box may overlap the vehicle: only blobs mostly covered by a person are dropped."""
    height, width = mask.shape
    moving = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)[1]  # shadows (127) are not motion
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(moving)
    found = []
    for x, y, w, h, area in stats[1:count]:
        if area < 0.01 * width * height or w < 1.1 * h or area < 0.35 * w * h:
            continue
        box = (float(x), float(y), float(x + w), float(y + h))
        if any(_covered_by(box, p.box) > 0.6 for p in people if not p.ignore):
            continue
        found.append(LabelledBox(box, "vehicle", 0.9))
    return found


def _covered_by(inner: tuple[float, ...], outer: tuple[float, ...]) -> float:
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return ix * iy / area if area > 0 else 0.0


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def link_tracks(labels: VideoLabels, min_iou: float = 0.3, max_gap: int = 2) -> None:
    """Greedy IoU linking of boxes over labelled frames (offline: good enough for labels)."""
    next_id = 0
    last: dict[int, tuple[int, LabelledBox]] = {}  # track -> (frame position, box)
    for position, frame in enumerate(labels.frames):
        pairs = sorted(
            (
                (iou(box.box, prev.box), track, bi)
                for bi, box in enumerate(frame.boxes)
                for track, (pos, prev) in last.items()
                if prev.label == box.label and position - pos <= max_gap
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        for overlap, track, bi in pairs:
            box = frame.boxes[bi]
            if overlap < min_iou or track in used_tracks or box.track >= 0:
                continue
            box.track = track
            used_tracks.add(track)
        for box in frame.boxes:
            if box.track < 0:
                box.track, next_id = next_id, next_id + 1
            last[box.track] = (position, box)


def _track_points(labels: VideoLabels) -> dict[int, list[tuple[float, LabelledBox]]]:
    tracks: dict[int, list[tuple[float, LabelledBox]]] = {}
    for frame in labels.frames:
        for box in frame.boxes:
            tracks.setdefault(box.track, []).append((frame.time, box))
    return tracks


def _speed(points: list[tuple[float, LabelledBox]], i: int, scale: str) -> float | None:
    """Centre speed around point i over about a second, in box heights (or widths) per second."""
    t0 = points[i][0]
    window = [(t, b) for t, b in points if abs(t - t0) <= 0.5]
    span = window[-1][0] - window[0][0]
    if span < MIN_TRACK_SPAN_S:
        return None
    (ta, a), (tb, b) = window[0], window[-1]
    dx = (b.box[0] + b.box[2] - a.box[0] - a.box[2]) / 2
    dy = (b.box[1] + b.box[3] - a.box[1] - a.box[3]) / 2
    sizes = [(bx.box[3] - bx.box[1]) if scale == "height" else (bx.box[2] - bx.box[0]) for _, bx in window]
    return float(np.hypot(dx, dy) / (tb - ta) / max(np.mean(sizes), 1.0))


def add_kinematic_actions(labels: VideoLabels) -> None:
    for points in _track_points(labels).values():
        for i, (_, box) in enumerate(points):
            if box.ignore:
                continue
            if box.label == "person":
                _person_kinematics(points, i, box, labels)
            else:
                _vehicle_kinematics(points, i, box)


def _person_kinematics(points: list[tuple[float, LabelledBox]], i: int, box: LabelledBox, labels: VideoLabels) -> None:
    speed = _speed(points, i, "height")
    if speed is not None:
        if speed <= STANDING_MAX:
            box.actions.update(standing=1.0, walking=0.0, running=0.0)
        elif WALKING_MIN <= speed <= WALKING_MAX:
            box.actions.update(standing=0.0, walking=1.0, running=0.0)
        elif speed >= RUNNING_MIN:
            box.actions.update(standing=0.0, walking=0.0, running=1.0)
    x1, y1, x2, y2 = box.box
    touches_edge = x1 <= 2 or y1 <= 2 or x2 >= labels.width - 2 or y2 >= labels.height - 2
    aspect = (x2 - x1) / max(y2 - y1, 1.0)
    if not touches_edge and aspect >= LYING_MIN_ASPECT:
        box.actions["lying"] = 1.0
    elif aspect <= UPRIGHT_MAX_ASPECT:
        box.actions["lying"] = 0.0
    box.actions["falling"] = (
        1.0 if _is_falling(points, i) else 0.0 if aspect <= UPRIGHT_MAX_ASPECT else box.actions.get("falling", -1)
    )
    if box.actions["falling"] < 0:
        del box.actions["falling"]


def _is_falling(points: list[tuple[float, LabelledBox]], i: int) -> bool:
    """Upright within the last FALL_WINDOW_S, lying now, and the top of the box came down."""
    t0, now = points[i]
    aspect_now = (now.box[2] - now.box[0]) / max(now.box[3] - now.box[1], 1.0)
    if aspect_now < LYING_MIN_ASPECT:
        return False
    for t, earlier in points[:i]:
        if t0 - t <= FALL_WINDOW_S:
            aspect = (earlier.box[2] - earlier.box[0]) / max(earlier.box[3] - earlier.box[1], 1.0)
            if aspect <= 0.8 and now.box[1] > earlier.box[1]:
                return True
    return False


def _vehicle_kinematics(points: list[tuple[float, LabelledBox]], i: int, box: LabelledBox) -> None:
    speed = _speed(points, i, "width")
    if speed is None:
        return
    if speed <= VEHICLE_STOPPED_MAX:
        box.actions.update(moving=0.0, stopped=1.0)
    elif speed >= VEHICLE_MOVING_MIN:
        box.actions.update(moving=1.0, stopped=0.0)


def add_clip_actions(labels: VideoLabels) -> None:
    """Weak clip labels: every confident person of a fight clip is taken as fighting, of a no-fight
    clip as not fighting; footage with no fight label is taken as peaceful (it is ordinary CCTV)."""
    fighting = 1.0 if labels.clip_label == "fight" else 0.0
    for frame in labels.frames:
        for box in frame.boxes:
            if box.label == "person" and not box.ignore:
                box.actions["fighting"] = fighting


assert set(PERSON_ACTIONS) >= {"standing", "walking", "running", "fighting", "falling", "lying"}
