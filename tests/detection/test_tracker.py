"""The IoU tracker on synthetic detections whose right answers are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detection.tracker import IouTracker, iou
from detection.types import Detection

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=0.2)


def person(x: float, y: float = 100.0, label: str = "person") -> Detection:
    return Detection(box=(x, y, x + 40.0, y + 80.0), score=0.9, label=label)


def ids(tracks) -> list[int]:
    return sorted(t.id for t in tracks)


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


def test_two_people_walking_right_keep_their_ids_for_ten_frames():
    tracker = IouTracker()
    seen = []
    for frame in range(10):
        detections = [person(50.0 + 3 * frame), person(300.0 + 4 * frame)]
        tracks = tracker.update(detections, T0 + frame * STEP)
        seen.append({t.id: t.box[0] for t in tracks})
    assert seen[0] == {}  # not yet confirmed (min_hits=2)
    for frame in range(1, 10):
        assert seen[frame] == {1: 50.0 + 3 * frame, 2: 300.0 + 4 * frame}
    assert [t.hits for t in tracker.tracks] == [10, 10]


def test_a_one_frame_flicker_is_never_reported():
    tracker = IouTracker(min_hits=2)
    reported = set()
    for frame in range(5):
        detections = [person(50.0)] + ([person(400.0)] if frame == 2 else [])
        reported |= {t.id for t in tracker.update(detections, T0 + frame * STEP)}
    assert reported == {1}


def test_a_track_missing_briefly_keeps_its_id():
    tracker = IouTracker(max_missing_s=1.0)
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    for frame in range(2, 6):  # missing for 0.8 s
        assert tracker.update([], T0 + frame * STEP) == []
    assert ids(tracker.update([person(52.0)], T0 + 6 * STEP)) == [1]


def test_a_track_missing_too_long_is_dropped_and_a_new_one_starts_there():
    tracker = IouTracker(max_missing_s=1.0)
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    for frame in range(2, 9):  # missing for 1.4 s
        tracker.update([], T0 + frame * STEP)
    assert tracker.tracks == []
    assert tracker.update([person(50.0)], T0 + 9 * STEP) == []  # a new track, not yet confirmed
    assert ids(tracker.update([person(50.0)], T0 + 10 * STEP)) == [2]


def test_a_track_is_not_revived_after_a_stall_longer_than_max_missing():
    # No frames at all for 5 s (a stalled stream): the old track must not absorb the next detection.
    tracker = IouTracker(max_missing_s=1.0)
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    later = T0 + timedelta(seconds=5)
    assert tracker.update([person(50.0)], later) == []
    assert ids(tracker.update([person(50.0)], later + STEP)) == [2]


def test_a_detection_of_another_class_never_joins_a_track():
    tracker = IouTracker()
    tracker.update([person(50.0)], T0)
    tracker.update([person(50.0)], T0 + STEP)
    tracks = tracker.update([person(50.0, label="car")], T0 + 2 * STEP)
    assert tracks == []
    assert [(t.id, t.label, t.hits) for t in tracker.tracks] == [(1, "person", 2), (2, "car", 1)]
