"""The ByteTrack-style tracker on synthetic detections whose right answers are known: targets moving
at known velocities, known gaps, known action spans under known noise."""

from __future__ import annotations

import itertools
import pickle
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detection import pipeline
from detection.tracker import (
    ActionSegment,
    ByteTracker,
    TrackerConfig,
    associate,
    iou,
    iou_matrix,
    linear_sum_assignment,
    smooth_actions,
    smoothing_gain,
)
from detection.types import PERSON_ACTIONS, Detection

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=0.2)


def person(x: float, y: float = 100.0, label: str = "person", score: float = 0.9, **actions: float) -> Detection:
    return Detection(box=(x, y, x + 40.0, y + 80.0), score=score, label=label, actions=actions)


def ids(tracks) -> list[int]:
    return sorted(t.id for t in tracks)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def config(**options) -> TrackerConfig:
    return TrackerConfig(**options)


# --- Geometry and assignment ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (0, 0, 5, 5), 25 / 100),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # sharing an edge is no overlap
        ((0, 0, 10, 10), (30, 30, 40, 40), 0.0),
    ],
)
def test_iou_matches_hand_computed_values(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_the_iou_matrix_agrees_with_pairwise_iou():
    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 100, size=(14, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(1, 60, size=(14, 2))], axis=1)
    a, b = boxes[:6], boxes[6:]
    expected = [[iou(tuple(p), tuple(q)) for q in b] for p in a]
    assert iou_matrix(a, b) == pytest.approx(np.array(expected))


def brute_force_minimum(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


@pytest.mark.parametrize("seed", range(40))
def test_the_assignment_finds_the_minimum_cost_of_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 6, size=2))
    cost = rng.random((n, m))
    if seed % 3 == 0:
        cost = np.round(cost * 3)  # ties
    rows, cols = linear_sum_assignment(cost)
    assert len(rows) == min(n, m) and len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
    assert list(rows) == sorted(rows)
    assert cost[rows, cols].sum() == pytest.approx(brute_force_minimum(cost))


def test_association_matches_everyone_where_greedy_overlap_would_leave_one_out():
    # Track 0 overlaps both boxes, track 1 only the first: greedy takes (0, 0) and strands track 1.
    overlap = np.array([[0.6, 0.5], [0.55, 0.0]])
    assert sorted(associate(overlap, min_iou=0.2)) == [(0, 1), (1, 0)]


def best_association(overlap: np.ndarray, min_iou: float) -> tuple[int, float]:
    """(most pairs, then most IoU) over every way of pairing rows with columns."""
    n, m = overlap.shape
    best = (0, 0.0)
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                values = [overlap[r, c] for r, c in zip(rows, cols, strict=True)]
                if all(v >= min_iou for v in values):
                    best = max(best, (k, round(sum(values), 9)))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_association_finds_the_best_pairing_of_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 6, size=2))
    overlap = np.where(rng.random((n, m)) < 0.4, rng.random((n, m)), 0.0)  # sparse, like real frames
    pairs = associate(overlap, min_iou=0.2)
    assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
    got = (len(pairs), round(sum(overlap[r, c] for r, c in pairs), 9))
    assert got == best_association(overlap, 0.2)


def test_association_never_pairs_below_the_minimum_iou():
    assert associate(np.array([[0.1, 0.9], [0.15, -1.0]]), min_iou=0.2) == [(0, 1)]


# --- Tracks -----------------------------------------------------------------------------------


def test_two_people_walking_right_keep_their_ids_for_ten_frames():
    tracker = ByteTracker()
    seen = []
    for frame in range(10):
        detections = [person(50.0 + 3 * frame), person(300.0 + 4 * frame)]
        tracks = tracker.update(detections, T0 + frame * STEP)
        seen.append({t.id: t.box[0] for t in tracks})
    assert seen[0] == {}  # not yet confirmed (min_hits=2)
    for frame in range(1, 10):
        assert seen[frame] == {1: 50.0 + 3 * frame, 2: 300.0 + 4 * frame}
    assert [t.hits for t in tracker.tracks] == [10, 10]


def test_two_people_crossing_paths_keep_their_ids_though_one_hides_behind_the_other():
    # A walks right at 100 px/s, B left at 100 px/s on nearly the same line; they meet at t = 1.5 s
    # and B is hidden behind A from 1.2 s to 1.8 s. Without prediction B's last box would be 60 px
    # behind it when it reappears, past any overlap with its real box.
    tracker = ByteTracker()
    ids_seen: dict[str, set[int]] = {"A": set(), "B": set()}
    for frame in range(31):
        t = frame * 0.1
        a, b = person(100.0 + 100 * t), person(400.0 - 100 * t, y=104.0)
        visible = [a] if 1.2 <= t <= 1.8 else [a, b]
        for track in tracker.update(visible, at(t)):
            who = "A" if track.box == a.box else "B"
            ids_seen[who].add(track.id)
    assert ids_seen == {"A": {1}, "B": {2}}


def test_a_target_missed_for_a_while_is_predicted_along_and_reacquired_with_its_id():
    # 100 px/s, 10 fps; missing for 1.2 s it moves 120 px: three box widths from where it was lost.
    tracker = ByteTracker()
    for frame in range(20):
        tracker.update([person(100.0 + 10 * frame)], at(frame * 0.1))
    for frame in range(20, 32):
        assert tracker.update([], at(frame * 0.1)) == []
    [lost] = tracker.tracks
    predicted_x1 = lost.smoothed_box[0]
    assert predicted_x1 == pytest.approx(100.0 + 10 * 31, abs=4.0)  # the prediction carried it along
    assert lost.box[0] == 100.0 + 10 * 19  # its last seen box stays where it was seen
    assert ids(tracker.update([person(100.0 + 10 * 32)], at(3.2))) == [1]


def test_the_velocity_of_a_constant_velocity_target_converges_to_the_truth():
    # 60 px/s right and 20 px/s up, boxes jittered by 2 px (the filter's assumed noise for a 40 px box).
    rng = np.random.default_rng(7)
    tracker = ByteTracker()
    for frame in range(80):
        t = frame * 0.1
        x, y = 100 + 60 * t + rng.normal(0, 2), 300 - 20 * t + rng.normal(0, 2)
        tracks = tracker.update([Detection((x, y, x + 40, y + 80), 0.9)], at(t))
    vx, vy = tracks[0].velocity
    assert np.hypot(vx - 60.0, vy + 20.0) < 9.0  # px/s, within 15 % of the speed


def test_without_noise_the_velocity_is_exact_within_a_tenth_of_a_pixel_per_second():
    tracker = ByteTracker()
    for frame in range(40):
        tracks = tracker.update([person(100.0 + 12 * frame, y=50.0 + 4 * frame)], at(frame * 0.2))
    assert tracks[0].velocity == pytest.approx((60.0, 20.0), abs=0.1)


def test_irregular_frame_times_are_used_as_real_time_steps():
    # Frames 20 ms to 400 ms apart: a filter counting frames instead of seconds gets this wrong.
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.02, 0.4, size=60))
    tracker = ByteTracker()
    reported = set()
    for t in times:
        tracks = tracker.update([person(100.0 + 80 * t)], at(float(t)))
        reported |= {tr.id for tr in tracks}
    assert reported == {1}
    assert tracks[0].velocity == pytest.approx((80.0, 0.0), abs=1.0)


def test_the_same_frame_time_twice_does_not_move_the_prediction():
    tracker = ByteTracker()
    for frame in range(5):
        tracker.update([person(100.0 + 10 * frame)], at(frame * 0.1))
    before = tracker.tracks[0].smoothed_box
    tracker.update([], at(0.4))
    assert tracker.tracks[0].smoothed_box == pytest.approx(before)


def test_weak_detections_carry_a_confirmed_track_but_never_start_one():
    tracker = ByteTracker()
    for frame in range(5):
        tracker.update([person(100.0 + 5 * frame)], at(frame * 0.1))
    for frame in range(5, 15):  # partly occluded: scores between low_thresh and high_thresh
        tracks = tracker.update([person(100.0 + 5 * frame, score=0.3)], at(frame * 0.1))
        assert [(t.id, t.score) for t in tracks] == [(1, 0.3)]
    for frame in range(15, 30):  # a weak detection elsewhere, never confident
        tracks = tracker.update([person(100.0 + 5 * frame), person(500.0, score=0.4)], at(frame * 0.1))
        assert ids(tracks) == [1]
    assert [t.id for t in tracker.tracks] == [1]


class _Weighed:
    """A detector whose scores run low: it asks the tracker to start tracks from 0.25."""

    name = "low-scores"
    track_start_score = 0.25

    def detect(self, image):
        return []


def test_a_detector_sets_the_score_that_starts_a_track():
    assert pipeline.new_state(_Weighed(), []).tracker.config.high_thresh == 0.25
    assert pipeline.new_state(detector=None, rules=[]).tracker.config == TrackerConfig()  # type: ignore[arg-type]


def test_a_steady_actor_scored_between_start_and_default_start_scores_gets_a_track():
    weighed, default = pipeline.new_state(_Weighed(), []).tracker, ByteTracker()
    for frame in range(5):
        detections = [person(100.0 + 5 * frame, score=0.3), person(500.0, score=0.2)]  # 0.2: below both
        started = weighed.update(detections, at(frame * 0.1))
        assert default.update(detections, at(frame * 0.1)) == []
    assert [(t.id, t.score) for t in started] == [(1, 0.3)]


def test_detections_below_the_low_threshold_are_ignored():
    tracker = ByteTracker()
    for frame in range(3):
        tracker.update([person(100.0)], at(frame * 0.1))
    assert tracker.update([person(100.0, score=0.05)], at(0.3)) == []


def test_a_one_frame_flicker_is_never_reported():
    tracker = ByteTracker(config(min_hits=2))
    reported = set()
    for frame in range(5):
        detections = [person(50.0)] + ([person(400.0)] if frame == 2 else [])
        reported |= {t.id for t in tracker.update(detections, T0 + frame * STEP)}
    assert reported == {1}


def test_a_flicker_followed_by_weak_detections_is_still_never_reported():
    tracker = ByteTracker()
    reported = set()
    for frame in range(10):
        detections = [person(400.0, score=0.9 if frame == 0 else 0.3)]
        reported |= {t.id for t in tracker.update(detections, at(frame * 0.1))}
    assert reported == set()


def test_a_track_missing_briefly_keeps_its_id():
    tracker = ByteTracker(config(max_missing_s=1.0))
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    for frame in range(2, 6):  # missing for 0.8 s
        assert tracker.update([], T0 + frame * STEP) == []
    assert ids(tracker.update([person(52.0)], T0 + 6 * STEP)) == [1]


def test_a_track_missing_too_long_is_dropped_and_a_new_one_starts_there():
    tracker = ByteTracker(config(max_missing_s=1.0))
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    for frame in range(2, 9):  # missing for 1.4 s
        tracker.update([], T0 + frame * STEP)
    assert tracker.tracks == []
    assert tracker.update([person(50.0)], T0 + 9 * STEP) == []  # a new track, not yet confirmed
    assert ids(tracker.update([person(50.0)], T0 + 10 * STEP)) == [2]


def test_a_track_is_not_revived_after_a_stall_longer_than_max_missing():
    # No frames at all for 5 s (a stalled stream): the old track must not absorb the next detection.
    tracker = ByteTracker(config(max_missing_s=1.0))
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    later = T0 + timedelta(seconds=5)
    assert tracker.update([person(50.0)], later) == []
    assert ids(tracker.update([person(50.0)], later + STEP)) == [2]


def test_a_detection_of_another_class_never_joins_a_track():
    tracker = ByteTracker()
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    tracks = tracker.update([person(50.0, label="vehicle")], T0 + 2 * STEP)
    assert tracks == []
    assert [(t.id, t.label, t.hits) for t in tracker.tracks] == [(1, "person", 2), (2, "vehicle", 1)]


def test_a_track_that_lives_for_hours_keeps_bounded_history():
    tracker = ByteTracker()
    for frame in range(2000):
        tracker.update([person(100.0, fighting=0.9)], at(frame * 0.2))
    [track] = tracker.tracks
    assert track.hits == 2000 and len(track.history) == 600
    [segment] = tracker.open_segments()
    assert 300 <= len(segment.boxes) <= 600
    assert segment.boxes[0][0] == T0 and segment.boxes[-1][0] == at(1999 * 0.2)  # thinned, not cut


# --- Actions ----------------------------------------------------------------------------------


def test_action_smoothing_weighs_an_observation_by_the_time_since_the_last():
    weight = 0.0
    for _ in range(100):  # steady at 10 fps: an exponential moving average
        weight, gain = smoothing_gain(weight, dt=0.1, tau_s=0.5)
    assert gain == pytest.approx(1 - np.exp(-0.1 / 0.5))
    assert smooth_actions({"walking": 0.0}, {"walking": 1.0}, gain)["walking"] == pytest.approx(gain)
    _, after_a_second = smoothing_gain(weight, dt=1.0, tau_s=0.5)
    assert after_a_second == pytest.approx(1 / (np.exp(-2.0) / (1 - np.exp(-0.2)) + 1))


def test_a_new_tube_averages_its_first_action_scores():
    tracker = ByteTracker()
    for frame, score in enumerate([0.9, 0.1, 0.5]):
        [*tracks] = tracker.update([person(100.0, fighting=score)], at(frame * 0.001))
    assert tracks[0].actions["fighting"] == pytest.approx(0.5, abs=0.01)  # not 0.9, the first one


def test_a_detector_without_action_scores_leaves_the_tracks_actions_empty():
    tracker = ByteTracker()
    for frame in range(5):
        tracks = tracker.update([person(100.0)], at(frame * 0.1))
    assert tracks[0].actions == {}
    assert tracker.close_all(at(1.0)) == []


def test_actions_of_the_class_a_detection_does_not_mention_count_as_zero():
    tracker = ByteTracker(config(action_tau_s=0.0))  # no smoothing: the latest observation
    tracker.update([person(100.0, running=0.8)], at(0.0))
    [track] = tracker.update([person(100.0, running=0.6, waving=0.4)], at(0.1))
    assert track.actions == {**dict.fromkeys(PERSON_ACTIONS, 0.0), "running": 0.6, "waving": 0.4}


def fighting_from_2_to_5_s(seed: int) -> list[ActionSegment]:
    """10 fps for 8 s; the truth is 0.8 while fighting, 0.15 otherwise, and every per-frame score is
    off by up to 0.5 either way (clipped to 0..1): without smoothing it splits in about half the runs."""
    rng = np.random.default_rng(seed)
    tracker = ByteTracker()
    segments = []
    for frame in range(80):
        t = frame * 0.1
        score = float(np.clip((0.8 if 2.0 <= t < 5.0 else 0.15) + rng.uniform(-0.5, 0.5), 0.0, 1.0))
        tracker.update([person(100.0 + 5 * frame, fighting=score, standing=1 - score)], at(t))
        segments += tracker.pop_segments()
    return segments + tracker.close_all(at(8.0))


def test_noisy_action_scores_make_exactly_one_segment_close_to_the_truth():
    errors = []
    for seed in range(20):
        segments = fighting_from_2_to_5_s(seed)
        [segment] = [s for s in segments if s.action == "fighting"]
        assert (segment.track_id, segment.label) == (1, "person")
        errors += [(segment.start - at(2.0)).total_seconds(), (segment.end - at(4.9)).total_seconds()]
        assert 0.6 <= segment.score <= 1.0
        assert segment.boxes[0][0] == segment.start and segment.boxes[-1][0] == segment.end
        # Standing mirrors it: two segments, one ending and one starting near the fight's ends.
        standing = sorted((s.start, s.end) for s in segments if s.action == "standing")
        assert len(standing) == 2
        errors += [(standing[0][1] - at(1.9)).total_seconds(), (standing[1][0] - at(5.0)).total_seconds()]
    # The smoothing (tau 0.5 s) delays each end by about 0.3-0.4 s, the noise by up to as much again.
    assert all(0.0 <= e <= 0.8 for e in errors), errors
    assert np.mean(errors) <= 0.5


def test_an_action_shorter_than_the_minimum_duration_makes_no_segment():
    tracker = ByteTracker(config(action_tau_s=0.0, min_duration_s=0.3))
    for frame in range(20):
        fighting = 0.9 if frame in (5, 6) else 0.0  # 0.1 s above the threshold
        tracker.update([person(100.0, fighting=fighting)], at(frame * 0.1))
    assert tracker.close_all(at(2.0)) == []


def test_hysteresis_keeps_one_segment_through_a_dip_above_the_off_score():
    tracker = ByteTracker(config(action_tau_s=0.0))
    scores = [0.0] * 3 + [0.9] * 5 + [0.4] * 3 + [0.9] * 5 + [0.0] * 3  # 0.4: below on, above off
    for frame, score in enumerate(scores):
        tracker.update([person(100.0, running=score)], at(frame * 0.1))
    [segment] = [s for s in tracker.pop_segments() if s.action == "running"]
    assert (segment.start, segment.end) == (at(0.3), at(1.5))


def test_pop_segments_returns_each_finished_segment_once():
    tracker = ByteTracker(config(action_tau_s=0.0))
    for frame, score in enumerate([0.9] * 5 + [0.0] * 2):
        tracker.update([person(100.0, falling=score)], at(frame * 0.1))
    first = tracker.pop_segments()
    assert [(s.action, s.start, s.end) for s in first] == [("falling", at(0.0), at(0.4))]
    assert tracker.pop_segments() == []


def test_close_all_ends_open_segments_at_the_last_frame_the_track_was_seen():
    tracker = ByteTracker(config(action_tau_s=0.0))
    for frame in range(6):
        tracker.update([person(100.0, lying=0.9)], at(frame * 0.1))
    tracker.update([], at(0.7))  # gone, but not for long enough to be dropped
    [segment] = [s for s in tracker.close_all(at(0.8)) if s.action == "lying"]
    assert (segment.start, segment.end) == (at(0.0), at(0.5))
    assert tracker.close_all(at(0.9)) == [] and tracker.pop_segments() == []


def test_a_dropped_track_closes_its_segments():
    tracker = ByteTracker(config(action_tau_s=0.0, max_missing_s=1.0))
    for frame in range(6):
        tracker.update([person(100.0, lying=0.9)], at(frame * 0.1))
    tracker.update([], at(1.0))
    assert tracker.pop_segments() == []  # still within max_missing_s
    tracker.update([], at(1.6))
    [segment] = [s for s in tracker.pop_segments() if s.action == "lying"]
    assert (segment.track_id, segment.end) == (1, at(0.5))


# --- Hand-over and cost -----------------------------------------------------------------------


def walk(tracker: ByteTracker, frames: range, rng: np.random.Generator) -> list[list[tuple[int, float]]]:
    out = []
    for frame in frames:
        detections = [person(50.0 + 4 * frame, fighting=float(rng.uniform(0.6, 1.0)))]
        if frame >= 8:
            detections.append(person(400.0 - 3 * frame))
        out.append([(t.id, round(t.box[0], 3)) for t in tracker.update(detections, at(frame * 0.1))])
    return out


def test_a_pickled_tracker_carries_on_with_the_same_ids_and_results():
    tracker = ByteTracker()
    walk(tracker, range(10), np.random.default_rng(0))
    thawed = pickle.loads(pickle.dumps(tracker, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
    expected = walk(tracker, range(10, 20), np.random.default_rng(1))
    assert walk(thawed, range(10, 20), np.random.default_rng(1)) == expected
    assert {i for frame in expected for i, _ in frame} == {1, 2}
    assert thawed.tracks[0].actions == tracker.tracks[0].actions
    assert thawed.close_all(at(3.0)) == tracker.close_all(at(3.0))


def test_a_camera_state_frozen_by_another_tracker_version_is_refused():
    state = pipeline.new_state(detector=None, rules=[])  # type: ignore[arg-type]
    state.tracker.state_version = -1
    with pytest.raises(TypeError):
        pipeline.thaw(pipeline.freeze(state), detector=None, rules=[])  # type: ignore[arg-type]


def test_twenty_actors_cost_less_than_a_millisecond_a_frame():
    rng = np.random.default_rng(5)
    starts = rng.uniform(0, 1500, size=(20, 2))
    speeds = rng.uniform(-80, 80, size=(20, 2))
    frames = []
    for frame in range(100):
        t = frame * 0.1
        frames.append(
            [
                person(x + vx * t, y + vy * t, score=0.9, **{a: float(rng.random()) for a in PERSON_ACTIONS})
                for (x, y), (vx, vy) in zip(starts, speeds, strict=True)
            ]
        )
    best = float("inf")
    for _ in range(15):  # the best of several runs: the cost of the code, not of a busy machine
        tracker = ByteTracker()
        started = time.perf_counter()
        for frame, detections in enumerate(frames):
            tracks = tracker.update(detections, at(frame * 0.1))
        best = min(best, (time.perf_counter() - started) / len(frames))
    print(f"tracker: {best * 1e3:.3f} ms per frame with 20 actors")
    assert len(tracks) == 20
    assert best < 1e-3
