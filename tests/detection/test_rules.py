"""The zone rule engine on hand-made tracks in a 200x100 frame, stepped every half second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detection.rules import ZoneRuleEngine, ZoneRuleSpec
from detection.schedule import parse_schedule
from detection.tracker import Track

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)  # a Monday
W, H = 200, 100
ZONE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.8), (0.2, 0.8)]
INSIDE = (60.0, 20.0, 100.0, 60.0)  # bottom centre (0.4, 0.6): inside
OUTSIDE = (150.0, 20.0, 190.0, 60.0)  # bottom centre (0.85, 0.6)
FEET_OUTSIDE = (60.0, 40.0, 100.0, 90.0)  # centre (0.4, 0.65) inside, bottom centre (0.4, 0.9) outside


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def track(box=INSIDE, *, track_id: int = 1, score: float = 0.9, label: str = "person") -> Track:
    return Track(id=track_id, label=label, box=box, score=score, first_seen=T0, last_seen=T0)


def engine(**spec_options) -> ZoneRuleEngine:
    spec = ZoneRuleSpec(rule_id=7, polygon=ZONE, min_duration_s=1.0, **spec_options)
    return ZoneRuleEngine([spec], report_every_s=2.0, grace_s=2.0)


def run(rules: ZoneRuleEngine, frames: dict[float, list[Track]]) -> list[tuple[float, object]]:
    """Step through {seconds: tracks}; return (seconds, hit) for every hit."""
    return [(s, hit) for s, tracks in frames.items() for hit in rules.step(tracks, at(s), W, H)]


def every_half_second(start: float, stop: float, tracks: list[Track]) -> dict[float, list[Track]]:
    return {start + i * 0.5: tracks for i in range(int((stop - start) / 0.5) + 1)}


def test_a_track_standing_in_the_zone_fires_once_it_has_stayed_long_enough():
    hits = run(engine(), every_half_second(0.0, 1.5, [track()]))
    assert [(s, h.closed, h.dwell_s) for s, h in hits] == [(1.0, False, 1.0)]
    _, hit = hits[0]
    assert (hit.rule_id, hit.track_id, hit.label, hit.started_at, hit.score) == (7, 1, "person", T0, 0.9)


def test_a_track_that_stays_is_reported_again_every_report_interval():
    hits = run(engine(), every_half_second(0.0, 5.5, [track()]))
    assert [(s, h.dwell_s) for s, h in hits] == [(1.0, 1.0), (3.0, 3.0), (5.0, 5.0)]
    assert all(not h.closed and h.started_at == T0 for _, h in hits)


def test_a_track_that_leaves_is_closed_once_the_grace_period_has_passed():
    frames = every_half_second(0.0, 1.5, [track()]) | every_half_second(2.0, 6.0, [track(OUTSIDE)])
    hits = run(engine(), frames)
    assert [(s, h.closed) for s, h in hits] == [(1.0, False), (4.0, True)]
    _, closing = hits[1]
    assert (closing.started_at, closing.last_seen_at, closing.dwell_s) == (T0, at(1.5), 1.5)


def test_a_track_that_leaves_briefly_stays_in_its_segment():
    frames = every_half_second(0.0, 1.0, [track()]) | every_half_second(1.5, 2.5, []) | {3.0: [track()]}
    hits = run(engine(), frames)
    assert [(s, h.closed, h.started_at, h.dwell_s) for s, h in hits] == [(1.0, False, T0, 1.0), (3.0, False, T0, 3.0)]


def test_a_track_below_the_minimum_confidence_never_fires():
    assert run(engine(min_confidence=0.5), every_half_second(0.0, 5.0, [track(score=0.49)])) == []


def test_a_track_of_another_class_never_fires():
    assert run(engine(), every_half_second(0.0, 5.0, [track(label="car")])) == []
    assert len(run(engine(actor_class="any"), every_half_second(0.0, 1.0, [track(label="car")]))) == 1


def test_a_box_whose_feet_are_outside_the_zone_does_not_fire():
    assert run(engine(), every_half_second(0.0, 5.0, [track(FEET_OUTSIDE)])) == []


def test_a_rule_outside_its_schedule_does_not_fire():
    # 12:00 UTC on Monday is 13:00 in Paris: outside the 08:00-12:30 window there, inside it in UTC.
    morning = parse_schedule([{"days": [0], "start": "08:00", "end": "12:30"}])
    assert run(engine(schedule=morning, tz_name="Europe/Paris"), every_half_second(0.0, 5.0, [track()])) == []
    assert len(run(engine(schedule=morning, tz_name="UTC"), every_half_second(0.0, 1.0, [track()]))) == 1


def test_close_all_closes_fired_segments_and_forgets_the_others():
    rules = engine()
    run(rules, every_half_second(0.0, 1.0, [track()]) | {1.5: [track(), track(track_id=2)]})
    closing = rules.close_all()
    assert [(h.track_id, h.closed, h.last_seen_at) for h in closing] == [(1, True, at(1.5))]
    assert rules.segments == {}
    assert rules.close_all() == []


def test_hit_boxes_are_normalized_with_offsets_in_seconds_from_the_segment_start():
    moving = {0.0: [track((60.0, 20.0, 100.0, 60.0))], 0.5: [track((70.0, 25.0, 110.0, 65.0))]}
    moving[1.0] = [track((80.0, 30.0, 120.0, 70.0))]
    ((_, hit),) = run(engine(), moving)
    assert hit.boxes == ((0.0, 0.3, 0.2, 0.5, 0.6), (0.5, 0.35, 0.25, 0.55, 0.65), (1.0, 0.4, 0.3, 0.6, 0.7))


def acting(actions: dict[str, float], box=INSIDE, track_id: int = 1) -> Track:
    return Track(id=track_id, label="person", box=box, score=0.9, first_seen=T0, last_seen=T0, actions=actions)


def test_a_rule_with_actions_fires_only_for_a_track_doing_one_of_them():
    fighter, bystander = acting({"fighting": 0.8, "walking": 0.6}), acting({"fighting": 0.3}, track_id=2)
    frames = every_half_second(0.0, 1.5, [fighter, bystander])
    hits = run(engine(actions=frozenset({"fighting", "falling"})), frames)
    assert [(h.track_id, h.action) for _, h in hits] == [(1, "fighting")]
    assert hits[0][1].conditions[2].as_dict() == {"name": "fighting", "value": 0.8, "required": ">= 0.5", "unit": ""}


def test_a_track_without_action_scores_meets_only_rules_that_admit_present():
    frames = every_half_second(0.0, 1.5, [track()])
    assert run(engine(actions=frozenset({"fighting"})), frames) == []
    hits = run(engine(actions=frozenset({"present", "fighting"})), frames)
    assert [h.action for _, h in hits] == ["present"]
    assert [h.action for _, h in run(engine(), frames)] == ["present"]


def test_a_segment_reports_the_best_scored_action_it_has_seen():
    scores = [{"fighting": 0.0}, {"fighting": 0.7}, {"fighting": 0.9}, {"fighting": 0.0}, {"fighting": 0.0}]
    frames = {i * 0.5: [acting(s)] for i, s in enumerate(scores)}
    hits = run(engine(actions=frozenset({"present", "fighting"})), frames)
    assert [h.action for _, h in hits] == ["fighting"]
    assert hits[0][1].conditions[2].value == 0.9
