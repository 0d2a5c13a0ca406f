"""Each kind of rule on hand-made tracks, and what its hits say about why they fired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detection.geometry import Homography
from detection.rules import Anchor, CrossingDirection, RuleKind, SpeedUnit, ZoneRuleEngine, ZoneRuleSpec
from detection.tracker import Track

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
W, H = 1000, 1000
WHOLE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


def person(x: float, y: float, *, track_id: int = 1, size: float = 0.1, label: str = "person") -> Track:
    """A box of `size` (normalized height; half as wide) whose bottom centre is at (x, y)."""
    px, py, h = x * W, y * H, size * H
    box = (px - h / 4, py - h, px + h / 4, py)
    return Track(id=track_id, label=label, box=box, score=0.9, first_seen=T0, last_seen=T0)


def run(engine: ZoneRuleEngine, frames: list[tuple[float, list[Track]]]) -> list:
    return [hit for s, tracks in frames for hit in engine.step(tracks, T0 + timedelta(seconds=s), W, H)]


def values(hit) -> dict:
    return {c.name: c.value for c in hit.conditions}


def required(hit) -> dict:
    return {c.name: c.required for c in hit.conditions}


# A 20 m x 40 m rectangle of road seen in perspective: its far side looks narrower.
ROAD = [(0.4, 0.2), (0.6, 0.2), (0.9, 0.9), (0.1, 0.9)]


def test_a_calibration_maps_its_four_points_onto_the_real_rectangle():
    h = Homography.from_calibration(ROAD, 20.0, 40.0)
    for image, world in zip(ROAD, [(0, 0), (20, 0), (20, 40), (0, 40)], strict=True):
        assert h.apply(image) == pytest.approx(world, abs=1e-9)


def test_a_track_moving_10_m_in_1_s_on_a_calibrated_zone_goes_36_km_h():
    h = Homography.from_calibration(ROAD, 20.0, 40.0)
    inverse = Homography.from_points([(0, 0), (20, 0), (20, 40), (0, 40)], ROAD)
    start, end = inverse.apply((10.0, 15.0)), inverse.apply((10.0, 25.0))  # 10 m apart on the ground
    assert h.apply(end)[1] - h.apply(start)[1] == pytest.approx(10.0)
    spec = ZoneRuleSpec(
        rule_id=1,
        polygon=ROAD,
        kind=RuleKind.SPEED,
        min_speed=30.0,
        speed_unit=SpeedUnit.KM_H,
        calibration=h,
        min_duration_s=0.0,
    )
    [hit] = run(ZoneRuleEngine([spec]), [(0.0, [person(*start)]), (1.0, [person(*end)])])
    assert values(hit)["speed"] == pytest.approx(36.0, abs=0.01)
    assert required(hit)["speed"] == ">= 30 km/h"
    assert "speed 36 km/h >= 30 km/h" in hit.summary


def test_a_speed_below_the_limit_does_not_fire_and_px_per_s_needs_no_calibration():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, kind=RuleKind.SPEED, min_speed=150.0, min_duration_s=0.0)
    slow = [(0.0, [person(0.5, 0.5)]), (1.0, [person(0.6, 0.5)])]  # 100 px/s
    fast = [(0.0, [person(0.5, 0.5)]), (1.0, [person(0.7, 0.5)])]  # 200 px/s
    assert run(ZoneRuleEngine([spec]), slow) == []
    [hit] = run(ZoneRuleEngine([spec]), fast)
    assert values(hit)["speed"] == pytest.approx(200.0)


def test_a_speed_in_km_h_without_calibration_is_refused_when_the_rule_is_loaded():
    with pytest.raises(ValueError, match="calibrated"):
        ZoneRuleSpec(rule_id=1, polygon=WHOLE, kind=RuleKind.SPEED, min_speed=50.0, speed_unit=SpeedUnit.KM_H)


def test_moving_against_the_allowed_direction_is_wrong_way_and_along_it_is_not():
    # Allowed: up the image (90 deg). Walking down is wrong way; walking up is fine.
    spec = ZoneRuleSpec(
        rule_id=1, polygon=WHOLE, kind=RuleKind.WRONG_WAY, direction_deg=90.0, direction_tolerance_deg=60.0
    )
    down = [(s, [person(0.5, 0.3 + 0.1 * s)]) for s in (0.0, 0.5, 1.0, 1.5)]
    up = [(s, [person(0.5, 0.7 - 0.1 * s)]) for s in (0.0, 0.5, 1.0, 1.5)]
    standing = [(s, [person(0.5, 0.5)]) for s in (0.0, 0.5, 1.0, 1.5)]
    [hit] = run(ZoneRuleEngine([spec]), down)
    assert values(hit)["heading_deg"] == 270.0
    assert required(hit)["heading_deg"] == "> 60 deg off 90 deg"
    assert run(ZoneRuleEngine([spec]), up) == []
    assert run(ZoneRuleEngine([spec]), standing) == []  # a standing person's heading is noise


def test_a_crowd_fires_for_every_member_once_the_count_is_reached():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, kind=RuleKind.CROWD, min_count=3, min_duration_s=0.0)
    two = [person(0.2 + 0.1 * i, 0.5, track_id=i) for i in (1, 2)]
    three = [*two, person(0.6, 0.5, track_id=3)]
    assert run(ZoneRuleEngine([spec]), [(0.0, two)]) == []
    hits = run(ZoneRuleEngine([spec]), [(0.0, three)])
    assert sorted(h.track_id for h in hits) == [1, 2, 3]
    assert {h.track_ids for h in hits} == {(1, 2, 3)}
    assert values(hits[0])["count"] == 3 and required(hits[0])["count"] == ">= 3"


def test_loitering_fires_only_after_the_dwell_time_and_says_how_long():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, kind=RuleKind.LOITERING, dwell_s=30.0)
    frames = [(float(s), [person(0.5, 0.5)]) for s in range(0, 48)]
    hits = run(ZoneRuleEngine([spec], report_every_s=100.0), frames)
    [hit] = hits
    assert hit.last_seen_at == T0 + timedelta(seconds=30)
    assert str(next(c for c in hit.conditions if c.name == "dwell_s")) == "dwell_s 30 s >= 30 s"


def test_boxes_outside_the_size_limits_are_ignored():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, min_height=0.1, max_height=0.3, min_duration_s=0.0)
    assert run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5, size=0.05)])]) == []
    assert run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5, size=0.4)])]) == []
    [hit] = run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5, size=0.2)])])
    assert values(hit)["box_height"] == pytest.approx(0.2)
    assert required(hit)["box_height"] == "0.1..0.3"


def test_an_area_limit_uses_the_share_of_the_frame():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, max_area=0.01, min_duration_s=0.0)  # 0.2 x 0.1 = 0.02
    assert run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5, size=0.2)])]) == []
    assert len(run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5, size=0.1)])])) == 1


def test_detections_whose_anchor_is_in_a_mask_are_ignored():
    mask = [(0.0, 0.0), (0.3, 0.0), (0.3, 1.0), (0.0, 1.0)]  # e.g. a billboard with people on it
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, masks=[mask], min_duration_s=0.0)
    hits = run(ZoneRuleEngine([spec]), [(0.0, [person(0.2, 0.5, track_id=1), person(0.6, 0.5, track_id=2)])])
    assert [h.track_id for h in hits] == [2]


@pytest.mark.parametrize(
    ("anchor", "inside"), [(Anchor.BOTTOM_CENTER, False), (Anchor.CENTER, True), (Anchor.TOP_CENTER, True)]
)
def test_the_anchor_decides_which_point_of_the_box_must_be_in_the_zone(anchor, inside):
    upper_half = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5)]
    spec = ZoneRuleSpec(rule_id=1, polygon=upper_half, anchor=anchor, min_duration_s=0.0)
    # Feet at y=0.6 (below the zone), centre at 0.45, head at 0.3.
    assert bool(run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.6, size=0.3)])])) is inside


LINE = [(0.2, 0.5), (0.8, 0.5)]


def test_a_crossing_hit_is_closed_at_once_and_names_its_direction():
    spec = ZoneRuleSpec(rule_id=4, line=LINE, kind=RuleKind.CROSSING, crossing=CrossingDirection.LEFT_TO_RIGHT)
    [hit] = run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.4)]), (0.5, [person(0.5, 0.6)])])
    assert (hit.closed, hit.started_at, hit.kind) == (True, T0 + timedelta(seconds=0.5), RuleKind.CROSSING)
    assert values(hit)["crossing"] == "left -> right" and required(hit)["crossing"] == "left -> right"
    assert len(hit.boxes) == 2  # the track's last second, for the event


def test_passing_beside_the_end_of_a_line_is_no_crossing():
    spec = ZoneRuleSpec(rule_id=4, line=LINE, kind=RuleKind.CROSSING)
    assert run(ZoneRuleEngine([spec]), [(0.0, [person(0.9, 0.4)]), (0.5, [person(0.9, 0.6)])]) == []


def test_a_track_that_crosses_back_and_forth_is_counted_once():
    spec = ZoneRuleSpec(rule_id=4, line=LINE, kind=RuleKind.CROSSING)
    frames = [(0.5 * i, [person(0.5, 0.4 if i % 2 == 0 else 0.6)]) for i in range(10)]
    assert len(run(ZoneRuleEngine([spec]), frames)) == 1


def test_every_hit_lists_class_and_confidence_against_the_rule():
    spec = ZoneRuleSpec(rule_id=1, polygon=WHOLE, min_confidence=0.6, min_duration_s=1.0)
    [hit] = run(ZoneRuleEngine([spec]), [(0.0, [person(0.5, 0.5)]), (1.0, [person(0.5, 0.5)])])
    assert [c.as_dict() for c in hit.conditions] == [
        {"name": "actor_class", "value": "person", "required": "person", "unit": ""},
        {"name": "confidence", "value": 0.9, "required": ">= 0.6", "unit": ""},
        {"name": "duration_s", "value": 1.0, "required": ">= 1 s", "unit": "s"},
    ]
