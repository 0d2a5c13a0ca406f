"""Zone rules over tracks, pure Python: which track satisfies which rule, and why.

A zone is an area (polygon) or a directed line (tripwire). A rule has one kind of condition
(presence, loitering, speed, wrong way, crowd, crossing) plus filters that every kind shares
(actor class, actions, confidence, box size, masks, weekly schedule). The engine is stepped once
per analysed frame with the confirmed tracks and returns RuleHits; each hit carries the condition
values it fired on against their thresholds, so an incident can say why it was raised.

Area rules follow a *segment* per track: the span during which the track satisfies the rule, which
survives gaps (occlusions, a missed detection, a noisy measurement) shorter than the grace period.
A segment fires once its time reaches the threshold, is re-sent while it holds (so the incident
grows instead of a new one opening) and is closed once the track has not satisfied the rule for
longer than the grace period. Line rules fire once per track, at the moment of the crossing.
No I/O here: the engine is called from the camera loop for every frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from detection.geometry import Homography, Point, line_side, point_in_polygon, segments_intersect
from detection.schedule import Window, armed_at
from detection.tracker import Track
from detection.types import BoxXYXY

# Boxes in hits are normalized to 0..1 of the frame: [seconds since segment start, x1, y1, x2, y2].
TimedBox = tuple[float, float, float, float, float]

# "present" is what every track is seen doing; the other actions come from the action model, as
# the track's smoothed scores, and count once a score reaches ACTION_MIN_SCORE.
PRESENT = "present"
ACTION_MIN_SCORE = 0.5
SPEED_WINDOW_S = 1.0  # speed and heading are measured over the last second of a track
MIN_SPAN_S = 0.25  # ... and not from two samples closer together than this (noise dominates)
# Without a speed threshold, wrong-way judges only actors that move at least this much of the
# frame per second: the heading of a standing person is noise.
WRONG_WAY_MIN_MOVE = 0.05
PRUNE_EVERY_S = 5.0


class RuleKind(StrEnum):
    PRESENCE = "presence"  # in the area for at least min_duration_s
    LOITERING = "loitering"  # in the area for at least dwell_s, across occlusions shorter than grace
    SPEED = "speed"  # speed within [min_speed, max_speed] for at least min_duration_s
    WRONG_WAY = "wrong_way"  # moving off the allowed direction by more than the tolerance
    CROWD = "crowd"  # at least min_count matching actors in the area at once
    CROSSING = "crossing"  # crosses a directed line (in the required direction)


class Anchor(StrEnum):
    """The point of a box that must be inside a zone."""

    BOTTOM_CENTER = "bottom_center"  # where a person stands or a vehicle touches the road
    CENTER = "center"
    TOP_CENTER = "top_center"  # a head over a counter, a car roof seen from above


class SpeedUnit(StrEnum):
    PX_S = "px/s"
    M_S = "m/s"  # needs the zone's calibration
    KM_H = "km/h"  # needs the zone's calibration


class CrossingDirection(StrEnum):
    """Sides of a line A->B as seen on the image: right is where A->B turns clockwise."""

    ANY = "any"
    LEFT_TO_RIGHT = "left_to_right"
    RIGHT_TO_LEFT = "right_to_left"


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Condition:
    """One condition of a hit: the observed value against what the rule requires."""

    name: str
    value: float | str
    required: str  # e.g. ">= 30 s", "left -> right"
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "required": self.required, "unit": self.unit}

    def __str__(self) -> str:  # "dwell_s 47 s >= 30 s", "crossing left -> right (needs either way)"
        if isinstance(self.value, str):
            return f"{self.name} {self.value} (needs {self.required})"
        return f"{self.name} {_number(self.value)}{' ' + self.unit if self.unit else ''} {self.required}"


def at_least(name: str, value: float, threshold: float, unit: str = "") -> Condition:
    return Condition(name, round(value, 3), f">= {_number(threshold)}{' ' + unit if unit else ''}", unit)


def within(name: str, value: float, low: float | None, high: float | None, unit: str = "") -> Condition:
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        required = f"{_number(low)}..{_number(high)}{suffix}"
    elif low is not None:
        required = f">= {_number(low)}{suffix}"
    else:
        required = f"<= {_number(high or 0.0)}{suffix}"
    return Condition(name, round(value, 3), required, unit)


@dataclass(frozen=True)
class ZoneRuleSpec:
    """A rule as the engine sees it: built from AlertRule + Zone (+ Camera masks) by the worker."""

    rule_id: int
    polygon: Sequence[Point] = ()  # an area zone, normalized image coordinates
    line: Sequence[Point] = ()  # or a directed line (tripwire) from point 0 to point 1
    kind: str = RuleKind.PRESENCE
    actor_class: str = "person"  # "any" matches every class
    actions: frozenset[str] = frozenset()  # empty: any action
    min_confidence: float = 0.5
    min_duration_s: float = 1.0  # how long the condition must hold before the rule fires
    schedule: Sequence[Window] = ()  # empty: always armed
    tz_name: str = "UTC"
    anchor: str = Anchor.BOTTOM_CENTER
    grace_s: float | None = None  # gaps shorter than this do not split a segment; None: the engine's
    dwell_s: float = 0.0  # loitering: time in the area
    min_speed: float | None = None  # in speed_unit
    max_speed: float | None = None
    speed_unit: str = SpeedUnit.PX_S
    calibration: Homography | None = None  # normalized image point -> metres on the ground
    direction_deg: float | None = None  # wrong way: the allowed heading, 0 = right, 90 = up the image
    direction_tolerance_deg: float = 90.0
    min_count: int = 2  # crowd
    crossing: str = CrossingDirection.ANY
    line_margin: float = 0.02  # hysteresis: a crossing counts once the anchor is this far past the line
    min_height: float | None = None  # box height / frame height
    max_height: float | None = None
    min_area: float | None = None  # box area / frame area
    max_area: float | None = None
    masks: Sequence[Sequence[Point]] = ()  # detections whose anchor lies in one of these are ignored

    def __post_init__(self) -> None:
        # Fail when the worker loads its rules, not silently on every frame.
        if bool(self.polygon) == bool(self.line):
            raise ValueError(f"rule {self.rule_id}: give either a polygon or a line")
        if (self.kind == RuleKind.CROSSING) != bool(self.line):
            raise ValueError(f"rule {self.rule_id}: crossing rules, and only they, need a line")
        if self.kind == RuleKind.WRONG_WAY and self.direction_deg is None:
            raise ValueError(f"rule {self.rule_id}: a wrong-way rule needs its allowed direction")
        if self.speed_unit != SpeedUnit.PX_S and self.calibration is None:
            raise ValueError(f"rule {self.rule_id}: speeds in {self.speed_unit} need a calibrated zone")

    @property
    def is_line(self) -> bool:
        return bool(self.line)


@dataclass(frozen=True)
class RuleHit:
    """A track that satisfies a rule: sent when it first fires, while it holds, and when it ends."""

    rule_id: int
    track_id: int
    label: str
    started_at: datetime
    last_seen_at: datetime
    score: float  # best detection score while in the segment
    dwell_s: float
    boxes: tuple[TimedBox, ...]
    closed: bool  # the segment ended (or a crossing, which is instantaneous); no more hits for it
    kind: str = RuleKind.PRESENCE
    track_ids: tuple[int, ...] = ()  # every track the hit is about (a crowd); empty: just track_id
    conditions: tuple[Condition, ...] = ()  # why it fired; empty for hits built by older code
    action: str = PRESENT  # the best of the rule's actions the track was seen doing

    def explain(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.conditions]

    @property
    def summary(self) -> str:  # "dwell_s 47 s >= 30 s; count 7 >= 5"
        return "; ".join(str(c) for c in self.conditions)


def matching_action(spec: ZoneRuleSpec, track: Track) -> str | None:
    """The best-scored of the rule's actions the track is doing now; "present" when the rule asks
    for no action (or admits "present"); None when the track does none of them."""
    if not spec.actions:
        return PRESENT
    doing = [(track.actions.get(a, 0.0), a) for a in spec.actions if a != PRESENT]
    best = max((d for d in doing if d[0] >= ACTION_MIN_SCORE), default=None)
    if best is not None:
        return best[1]
    return PRESENT if PRESENT in spec.actions else None


def _action_score(track: Track, action: str) -> float:
    return 0.0 if action == PRESENT else track.actions.get(action, 0.0)


def _action_conditions(action: str, score: float) -> tuple[Condition, ...]:
    return () if action == PRESENT else (at_least(action, score, ACTION_MIN_SCORE),)


def anchor_point(box: BoxXYXY, width: int, height: int, anchor: str = Anchor.BOTTOM_CENTER) -> Point:
    """The box's anchor, normalized (bottom centre by default)."""
    x = (box[0] + box[2]) / 2 / width
    if anchor == Anchor.BOTTOM_CENTER:
        return (x, box[3] / height)
    if anchor == Anchor.CENTER:
        return (x, (box[1] + box[3]) / 2 / height)
    return (x, box[1] / height)


def normalize_box(box: BoxXYXY, width: int, height: int) -> tuple[float, float, float, float]:
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


class Velocity(NamedTuple):
    speed: float  # in the rule's unit
    heading_deg: float  # 0 = right, 90 = up the image
    moved: float  # normalized frame units per second (direction is judged only when moving)


@dataclass
class _Frame:
    """One step's input, with anchors computed once per track and anchor kind."""

    at: datetime
    width: int
    height: int
    tracks: Sequence[Track]
    anchors: dict[tuple[int, str], Point] = field(default_factory=dict)

    def anchor(self, track: Track, kind: str) -> Point:
        key = (track.id, kind)
        point = self.anchors.get(key)
        if point is None:
            point = self.anchors[key] = anchor_point(track.box, self.width, self.height, kind)
        return point


class _Motion:
    """The last second of boxes of every track: enough to measure speed and heading."""

    def __init__(self, window_s: float) -> None:
        self.window = timedelta(seconds=window_s + 1e-6)
        self.boxes: dict[int, deque[tuple[datetime, BoxXYXY]]] = {}

    def record(self, tracks: Sequence[Track], at: datetime) -> None:
        for track in tracks:
            recent = self.boxes.setdefault(track.id, deque())
            if recent and recent[-1][0] >= at:
                continue  # the same frame twice
            recent.append((at, track.box))
            while at - recent[0][0] > self.window:
                recent.popleft()

    def recent(self, track_id: int) -> Sequence[tuple[datetime, BoxXYXY]]:
        return self.boxes.get(track_id, ())

    def forget(self, before: datetime) -> None:
        for track_id in [k for k, v in self.boxes.items() if not v or v[-1][0] < before]:
            del self.boxes[track_id]


def velocity(
    spec: ZoneRuleSpec, recent: Sequence[tuple[datetime, BoxXYXY]], width: int, height: int
) -> Velocity | None:
    """Speed (in the rule's unit) and heading of the anchor over the recent boxes, if measurable."""
    if len(recent) < 2:
        return None
    (t0, box0), (t1, box1) = recent[0], recent[-1]
    dt = (t1 - t0).total_seconds()
    if dt < MIN_SPAN_S:
        return None
    p0, p1 = anchor_point(box0, width, height, spec.anchor), anchor_point(box1, width, height, spec.anchor)
    dx_px, dy_px = (p1[0] - p0[0]) * width, (p1[1] - p0[1]) * height
    heading = math.degrees(math.atan2(-dy_px, dx_px)) % 360.0  # image y grows downwards
    moved = math.hypot(p1[0] - p0[0], p1[1] - p0[1]) / dt
    if spec.speed_unit == SpeedUnit.PX_S or spec.calibration is None:
        return Velocity(math.hypot(dx_px, dy_px) / dt, heading, moved)
    (x0, y0), (x1, y1) = spec.calibration.apply(p0), spec.calibration.apply(p1)
    metres_per_s = math.hypot(x1 - x0, y1 - y0) / dt
    return Velocity(metres_per_s * (3.6 if spec.speed_unit == SpeedUnit.KM_H else 1.0), heading, moved)


def heading_off_by(heading_deg: float, allowed_deg: float) -> float:
    """Smallest angle between two headings, 0..180."""
    return abs((heading_deg - allowed_deg + 180.0) % 360.0 - 180.0)


def _timed_box(offset_s: float, box: BoxXYXY, frame: _Frame) -> TimedBox:
    x1, y1, x2, y2 = normalize_box(box, frame.width, frame.height)
    return (round(offset_s, 3), round(x1, 4), round(y1, 4), round(x2, 4), round(y2, 4))


@dataclass
class _Segment:
    track_id: int
    label: str
    started_at: datetime
    last_seen_at: datetime
    score: float
    boxes: list[TimedBox] = field(default_factory=list)
    fired: bool = False
    last_report: datetime | None = None
    conditions: tuple[Condition, ...] = ()  # the kind's conditions, as last measured while holding
    track_ids: tuple[int, ...] = ()
    action: str = PRESENT  # the best-scored matching action seen during the segment
    action_score: float = 0.0

    @property
    def dwell_s(self) -> float:
        return (self.last_seen_at - self.started_at).total_seconds()


def _size_conditions(spec: ZoneRuleSpec, box: tuple[float, float, float, float]) -> list[Condition]:
    height, area = box[3] - box[1], (box[2] - box[0]) * (box[3] - box[1])
    conditions = []
    if spec.min_height is not None or spec.max_height is not None:
        conditions.append(within("box_height", height, spec.min_height, spec.max_height))
    if spec.min_area is not None or spec.max_area is not None:
        conditions.append(within("box_area", area, spec.min_area, spec.max_area))
    return conditions


def _filter_conditions(spec: ZoneRuleSpec, label: str, score: float, box: TimedBox) -> list[Condition]:
    return [
        Condition("actor_class", label, spec.actor_class),
        at_least("confidence", score, spec.min_confidence),
        *_size_conditions(spec, box[1:]),
    ]


def _time_condition(spec: ZoneRuleSpec, seconds: float) -> Condition:
    if spec.kind == RuleKind.LOITERING:
        return at_least("dwell_s", seconds, spec.dwell_s, "s")
    return at_least("duration_s", seconds, spec.min_duration_s, "s")


def _segment_hit(spec: ZoneRuleSpec, segment: _Segment, *, closed: bool) -> RuleHit:
    last = segment.boxes[-1] if segment.boxes else (0.0, 0.0, 0.0, 0.0, 0.0)
    conditions = (
        *_filter_conditions(spec, segment.label, segment.score, last),
        *_action_conditions(segment.action, segment.action_score),
        *segment.conditions,
        _time_condition(spec, segment.dwell_s),
    )
    return RuleHit(
        rule_id=spec.rule_id,
        track_id=segment.track_id,
        label=segment.label,
        started_at=segment.started_at,
        last_seen_at=segment.last_seen_at,
        score=round(segment.score, 4),
        dwell_s=round(segment.dwell_s, 3),
        boxes=tuple(segment.boxes),
        closed=closed,
        kind=spec.kind,
        track_ids=segment.track_ids or (segment.track_id,),
        conditions=conditions,
        action=segment.action,
    )


@dataclass
class _LineState:
    """Which side of a line a track is on, with hysteresis so jitter on the line is no crossing."""

    last_seen: datetime
    side: int = 0  # confirmed side: -1 left, +1 right, 0 not yet known
    last_point: Point | None = None  # the latest anchor on the confirmed side
    first_across: Point | None = None  # the first anchor of the current run on the other side
    counted: bool = False  # a track crosses a line once

    def observe(self, p: Point, distance: float, margin: float) -> tuple[int, Point, Point] | None:
        """Feed one anchor and its signed distance from the line; returns (new side, last anchor on
        the old side, first anchor on the new one) when a crossing is confirmed."""
        sign = (distance > 0) - (distance < 0)
        if self.side == 0:
            if abs(distance) >= margin:
                self.side, self.last_point = sign, p
            return None
        if sign != -self.side:  # still on the confirmed side (or exactly on the line)
            if sign == self.side:
                self.last_point, self.first_across = p, None
            return None
        if self.first_across is None:
            self.first_across = p
        if abs(distance) < margin:
            return None  # across, but not far enough yet: could be jitter
        crossed = (sign, self.last_point or p, self.first_across)
        self.side, self.last_point, self.first_across = sign, p, None
        return crossed


def _direction_name(new_side: int) -> str:
    return CrossingDirection.LEFT_TO_RIGHT if new_side > 0 else CrossingDirection.RIGHT_TO_LEFT


_ARROWS = {CrossingDirection.LEFT_TO_RIGHT: "left -> right", CrossingDirection.RIGHT_TO_LEFT: "right -> left"}


class ZoneRuleEngine:
    def __init__(
        self,
        specs: Sequence[ZoneRuleSpec],
        *,
        report_every_s: float = 2.0,
        grace_s: float = 2.0,
        max_boxes: int = 240,
        speed_window_s: float = SPEED_WINDOW_S,
    ) -> None:
        self.specs = list(specs)
        self.grace_s = grace_s  # a track missed for less than this (occlusion, a missed detection) stays in
        self.report_every_s = report_every_s  # how often a firing segment is re-sent while it holds
        self.max_boxes = max_boxes  # boxes kept per segment; older ones are thinned out
        self._segments: dict[int, dict[int, _Segment]] = {}  # rule id -> track id -> segment
        self._lines: dict[int, dict[int, _LineState]] = {}  # rule id -> track id -> side
        self.motion = _Motion(speed_window_s)
        self._pruned_at: datetime | None = None

    @property
    def segments(self) -> dict[tuple[int, int], _Segment]:
        """Open segments by (rule id, track id)."""
        return {(r, t): s for r, by_track in self._segments.items() for t, s in by_track.items()}

    def step(self, tracks: Sequence[Track], at: datetime, width: int, height: int) -> list[RuleHit]:
        self.motion.record(tracks, at)
        frame = _Frame(at, width, height, tracks)
        hits: list[RuleHit] = []
        for spec in self.specs:
            hits.extend(self._step_rule(spec, frame))
        self._prune(at)
        return hits

    def _step_rule(self, spec: ZoneRuleSpec, frame: _Frame) -> list[RuleHit]:
        armed = armed_at(spec.schedule, frame.at, spec.tz_name)
        admitted = [t for t in frame.tracks if self._admits(spec, t, frame)] if armed else []
        if spec.is_line:
            return self._step_line(spec, admitted, frame)
        inside = [t for t in admitted if point_in_polygon(frame.anchor(t, spec.anchor), spec.polygon)]
        holding = self._holding(spec, inside, frame)
        ids = tuple(sorted(t.id for t, _ in holding)) if spec.kind == RuleKind.CROWD else ()
        # Close before advancing: a track back after a gap longer than the grace starts a new segment.
        hits: list[RuleHit | None] = list(self._close_expired(spec, frame.at))
        hits.extend(self._advance(spec, track, conditions, ids, frame) for track, conditions in holding)
        return [h for h in hits if h is not None]

    # --- Filters every kind shares --------------------------------------------------------------

    def _admits(self, spec: ZoneRuleSpec, track: Track, frame: _Frame) -> bool:
        if spec.actor_class != "any" and track.label != spec.actor_class:
            return False
        if track.score < spec.min_confidence:
            return False
        if matching_action(spec, track) is None:
            return False
        if not self._size_fits(spec, track.box, frame):
            return False
        if spec.masks:
            anchor = frame.anchor(track, spec.anchor)
            return not any(point_in_polygon(anchor, mask) for mask in spec.masks)
        return True

    @staticmethod
    def _size_fits(spec: ZoneRuleSpec, box: BoxXYXY, frame: _Frame) -> bool:
        height = (box[3] - box[1]) / frame.height
        if (spec.min_height is not None and height < spec.min_height) or (
            spec.max_height is not None and height > spec.max_height
        ):
            return False
        if spec.min_area is None and spec.max_area is None:
            return True
        area = height * (box[2] - box[0]) / frame.width
        return not (
            (spec.min_area is not None and area < spec.min_area) or (spec.max_area is not None and area > spec.max_area)
        )

    # --- Area rules -----------------------------------------------------------------------------

    def _holding(
        self, spec: ZoneRuleSpec, inside: list[Track], frame: _Frame
    ) -> list[tuple[Track, tuple[Condition, ...]]]:
        """The tracks in the area that satisfy the rule's kind now, with the measured conditions."""
        if spec.kind in (RuleKind.PRESENCE, RuleKind.LOITERING):
            return [(t, ()) for t in inside]
        if spec.kind == RuleKind.CROWD:
            if len(inside) < spec.min_count:
                return []
            count = (at_least("count", len(inside), spec.min_count),)
            return [(t, count) for t in inside]
        measured = ((t, self._motion_conditions(spec, t, frame)) for t in inside)
        return [(t, c) for t, c in measured if c is not None]

    def _motion_conditions(self, spec: ZoneRuleSpec, track: Track, frame: _Frame) -> tuple[Condition, ...] | None:
        v = velocity(spec, self.motion.recent(track.id), frame.width, frame.height)
        if v is None:
            return None
        speed = within("speed", v.speed, spec.min_speed, spec.max_speed, spec.speed_unit)
        speed_ok = (spec.min_speed is None or v.speed >= spec.min_speed) and (
            spec.max_speed is None or v.speed <= spec.max_speed
        )
        if spec.kind == RuleKind.SPEED:
            return (speed,) if speed_ok and (spec.min_speed, spec.max_speed) != (None, None) else None
        # Wrong way: moving (fast enough, when the rule says how fast) and off the allowed heading.
        moving = speed_ok if spec.min_speed is not None else v.moved >= WRONG_WAY_MIN_MOVE
        allowed = spec.direction_deg if spec.direction_deg is not None else 0.0
        off_by = heading_off_by(v.heading_deg, allowed)
        if not moving or off_by <= spec.direction_tolerance_deg:
            return None
        tolerance = f"> {_number(spec.direction_tolerance_deg)} deg off {_number(allowed)} deg"
        heading = Condition("heading_deg", round(v.heading_deg, 1), tolerance, "deg")
        return (heading, speed) if spec.min_speed is not None else (heading,)

    def _advance(
        self,
        spec: ZoneRuleSpec,
        track: Track,
        conditions: tuple[Condition, ...],
        track_ids: tuple[int, ...],
        frame: _Frame,
    ) -> RuleHit | None:
        at = frame.at
        by_track = self._segments.setdefault(spec.rule_id, {})
        segment = by_track.get(track.id)
        if segment is None:
            segment = by_track[track.id] = _Segment(track.id, track.label, at, at, track.score)
        segment.last_seen_at, segment.score = at, max(segment.score, track.score)
        segment.conditions, segment.track_ids = conditions, track_ids
        action = matching_action(spec, track) or PRESENT
        if _action_score(track, action) > segment.action_score:
            segment.action, segment.action_score = action, _action_score(track, action)
        segment.boxes.append(_timed_box((at - segment.started_at).total_seconds(), track.box, frame))
        if len(segment.boxes) > self.max_boxes:
            segment.boxes = segment.boxes[::2]
        threshold = spec.dwell_s if spec.kind == RuleKind.LOITERING else spec.min_duration_s
        if segment.dwell_s < threshold:
            return None
        due = segment.last_report is None or (at - segment.last_report).total_seconds() >= self.report_every_s
        if not due:
            return None
        segment.fired, segment.last_report = True, at
        return _segment_hit(spec, segment, closed=False)

    def _grace(self, spec: ZoneRuleSpec) -> float:
        return self.grace_s if spec.grace_s is None else spec.grace_s

    def _close_expired(self, spec: ZoneRuleSpec, at: datetime) -> list[RuleHit]:
        """Segments whose track has not satisfied the rule for longer than the grace period end."""
        by_track = self._segments.get(spec.rule_id, {})
        grace = self._grace(spec)
        closed = []
        for track_id, segment in list(by_track.items()):
            if (at - segment.last_seen_at).total_seconds() <= grace:
                continue
            del by_track[track_id]
            if segment.fired:
                closed.append(_segment_hit(spec, segment, closed=True))
        return closed

    # --- Line rules -----------------------------------------------------------------------------

    def _step_line(self, spec: ZoneRuleSpec, admitted: list[Track], frame: _Frame) -> list[RuleHit]:
        a, b = spec.line[0], spec.line[1]
        states = self._lines.setdefault(spec.rule_id, {})
        hits = []
        for track in admitted:
            state = states.get(track.id)
            if state is None:
                state = states[track.id] = _LineState(frame.at)
            state.last_seen = frame.at
            p = frame.anchor(track, spec.anchor)
            crossed = state.observe(p, line_side(p, a, b), spec.line_margin)
            if crossed is None or state.counted:
                continue
            new_side, before, after = crossed
            direction = _direction_name(new_side)
            # Passing beside the tripwire, beyond one of its ends, changes sides but is no crossing.
            if spec.crossing not in (CrossingDirection.ANY, direction) or not segments_intersect(before, after, a, b):
                continue
            state.counted = True
            hits.append(self._crossing_hit(spec, track, direction, frame))
        return hits

    def _crossing_hit(self, spec: ZoneRuleSpec, track: Track, direction: str, frame: _Frame) -> RuleHit:
        recent = self.motion.recent(track.id) or [(frame.at, track.box)]
        start = recent[0][0]
        boxes = tuple(_timed_box((t - start).total_seconds(), box, frame) for t, box in recent)
        required = "either way" if spec.crossing == CrossingDirection.ANY else _ARROWS[CrossingDirection(spec.crossing)]
        action = matching_action(spec, track) or PRESENT
        conditions = (
            *_filter_conditions(spec, track.label, track.score, boxes[-1]),
            *_action_conditions(action, _action_score(track, action)),
            Condition("crossing", _ARROWS[CrossingDirection(direction)], required),
        )
        return RuleHit(
            rule_id=spec.rule_id,
            track_id=track.id,
            label=track.label,
            started_at=frame.at,
            last_seen_at=frame.at,
            score=round(track.score, 4),
            dwell_s=0.0,
            boxes=boxes,
            closed=True,  # a crossing is an instant: nothing more will come for it
            kind=spec.kind,
            track_ids=(track.id,),
            conditions=conditions,
            action=action,
        )

    # --- Housekeeping ---------------------------------------------------------------------------

    def _prune(self, at: datetime) -> None:
        """Forget the motion and line sides of tracks gone for good (every few seconds, not per frame)."""
        if self._pruned_at is not None and (at - self._pruned_at).total_seconds() < PRUNE_EVERY_S:
            return
        self._pruned_at = at
        longest = max([self.grace_s, *(s.grace_s or 0.0 for s in self.specs)])
        before = at - timedelta(seconds=longest + self.motion.window.total_seconds())
        self.motion.forget(before)
        for states in self._lines.values():
            for track_id in [k for k, s in states.items() if s.last_seen < before]:
                del states[track_id]

    def adopt(self, specs: Sequence[ZoneRuleSpec]) -> None:
        """Carry on with (possibly edited) rules: state of rules that no longer exist is dropped."""
        self.specs = list(specs)
        kept = {spec.rule_id for spec in self.specs}
        self._segments = {rule_id: v for rule_id, v in self._segments.items() if rule_id in kept}
        self._lines = {rule_id: v for rule_id, v in self._lines.items() if rule_id in kept}

    def close_all(self) -> list[RuleHit]:
        """End every open segment (the analysis stops); fired ones are reported closed."""
        by_id = {s.rule_id: s for s in self.specs}
        hits = [
            _segment_hit(by_id[rule_id], segment, closed=True)
            for rule_id, by_track in self._segments.items()
            for segment in by_track.values()
            if segment.fired
        ]
        self._segments.clear()
        return hits
