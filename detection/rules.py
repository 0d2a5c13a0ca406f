"""Zone rules over tracks, pure Python: which track has been inside which zone long enough.

A first cut of the rule engine ("person in zone" with minimum duration and confidence); the rules
issue adds lines, dwell, speed, direction and counts on the same shape of input and output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from detection.geometry import Point, point_in_polygon
from detection.schedule import Window, armed_at
from detection.tracker import Track
from detection.types import BoxXYXY

# Boxes in hits are normalized to 0..1 of the frame: [seconds since segment start, x1, y1, x2, y2].
TimedBox = tuple[float, float, float, float, float]


@dataclass(frozen=True)
class ZoneRuleSpec:
    rule_id: int
    polygon: Sequence[Point]  # normalized image coordinates
    actor_class: str = "person"  # "any" matches every class
    min_confidence: float = 0.5
    min_duration_s: float = 1.0
    schedule: Sequence[Window] = ()  # empty: always armed
    tz_name: str = "UTC"


@dataclass(frozen=True)
class RuleHit:
    """A track that satisfies a rule: sent when it first fires, while it holds, and when it ends."""

    rule_id: int
    track_id: int
    label: str
    started_at: datetime
    last_seen_at: datetime
    score: float  # best detection score while in the zone
    dwell_s: float
    boxes: tuple[TimedBox, ...]
    closed: bool  # the track left the zone or was lost; no more hits for this segment


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

    @property
    def dwell_s(self) -> float:
        return (self.last_seen_at - self.started_at).total_seconds()

    def hit(self, rule_id: int, *, closed: bool) -> RuleHit:
        return RuleHit(
            rule_id=rule_id,
            track_id=self.track_id,
            label=self.label,
            started_at=self.started_at,
            last_seen_at=self.last_seen_at,
            score=round(self.score, 4),
            dwell_s=round(self.dwell_s, 3),
            boxes=tuple(self.boxes),
            closed=closed,
        )


def anchor_point(box: BoxXYXY, width: int, height: int) -> Point:
    """Bottom centre of the box, normalized: where a person stands or a vehicle touches the road."""
    return ((box[0] + box[2]) / 2 / width, box[3] / height)


def normalize_box(box: BoxXYXY, width: int, height: int) -> tuple[float, float, float, float]:
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


class ZoneRuleEngine:
    def __init__(
        self,
        specs: Sequence[ZoneRuleSpec],
        *,
        report_every_s: float = 2.0,
        grace_s: float = 2.0,
        max_boxes: int = 240,
    ) -> None:
        self.specs = list(specs)
        self.grace_s = grace_s  # a track missed for less than this (occlusion, a missed detection) stays in
        self.report_every_s = report_every_s  # how often a firing segment is re-sent while it holds
        self.max_boxes = max_boxes  # boxes kept per segment; older ones are thinned out
        self.segments: dict[tuple[int, int], _Segment] = {}

    def step(self, tracks: Sequence[Track], at: datetime, width: int, height: int) -> list[RuleHit]:
        hits: list[RuleHit] = []
        for spec in self.specs:
            hits.extend(self._step_rule(spec, tracks, at, width, height))
        return hits

    def _matches(self, spec: ZoneRuleSpec, track: Track, width: int, height: int) -> bool:
        if spec.actor_class != "any" and track.label != spec.actor_class:
            return False
        if track.score < spec.min_confidence:
            return False
        return point_in_polygon(anchor_point(track.box, width, height), spec.polygon)

    def _step_rule(
        self, spec: ZoneRuleSpec, tracks: Sequence[Track], at: datetime, width: int, height: int
    ) -> list[RuleHit]:
        armed = armed_at(spec.schedule, at, spec.tz_name)
        inside = {t.id: t for t in tracks if armed and self._matches(spec, t, width, height)}
        hits = [self._advance(spec, track, at, width, height) for track in inside.values()]
        hits.extend(self._close_missing(spec, inside, at))
        return [h for h in hits if h is not None]

    def _advance(self, spec: ZoneRuleSpec, track: Track, at: datetime, width: int, height: int) -> RuleHit | None:
        key = (spec.rule_id, track.id)
        segment = self.segments.get(key)
        if segment is None:
            segment = _Segment(track.id, track.label, at, at, track.score)
            self.segments[key] = segment
        segment.last_seen_at = at
        segment.score = max(segment.score, track.score)
        offset = (at - segment.started_at).total_seconds()
        x1, y1, x2, y2 = normalize_box(track.box, width, height)
        segment.boxes.append((round(offset, 3), round(x1, 4), round(y1, 4), round(x2, 4), round(y2, 4)))
        if len(segment.boxes) > self.max_boxes:
            segment.boxes = segment.boxes[::2]
        if segment.dwell_s < spec.min_duration_s:
            return None
        due = segment.last_report is None or (at - segment.last_report).total_seconds() >= self.report_every_s
        if not due:
            return None
        segment.fired, segment.last_report = True, at
        return segment.hit(spec.rule_id, closed=False)

    def _close_missing(self, spec: ZoneRuleSpec, inside: dict[int, Track], at: datetime) -> list[RuleHit]:
        closed = []
        for key, segment in list(self.segments.items()):
            if key[0] != spec.rule_id or key[1] in inside:
                continue
            if (at - segment.last_seen_at).total_seconds() <= self.grace_s:
                continue
            del self.segments[key]
            if segment.fired:
                closed.append(segment.hit(spec.rule_id, closed=True))
        return closed

    def close_all(self) -> list[RuleHit]:
        """End every open segment (the analysis stops); fired ones are reported closed."""
        hits = [s.hit(rule_id, closed=True) for (rule_id, _), s in self.segments.items() if s.fired]
        self.segments.clear()
        return hits
