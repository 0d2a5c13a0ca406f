"""A camera handed from one slice (task) to the next keeps its tracks and rule segments, so a
person loitering across the hand-over is still timed from when they arrived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from detection import pipeline
from detection.rules import RuleHit, ZoneRuleSpec
from detection.types import Detection, Frame

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
LOITERING = ZoneRuleSpec(
    rule_id=7, polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)], kind="loitering", dwell_s=10.0
)


class StandingPerson:
    """A detector that always sees one person standing still."""

    name = "fake"

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection(box=(40.0, 20.0, 60.0, 80.0), score=0.9)]


class Recorder:
    def __init__(self) -> None:
        self.hits: list[RuleHit] = []

    def on_frame(self, frame: Frame, tracks: object) -> None:
        pass

    def on_hits(self, frame: Frame, hits: list[RuleHit], tracks: object) -> None:
        self.hits.extend(hits)

    def keep_going(self, stats: object) -> bool:
        return True


def frames(from_s: int, to_s: int) -> list[Frame]:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    return [Frame(index=i, time=T0 + timedelta(seconds=i), image=image) for i in range(from_s, to_s)]


def test_loitering_across_a_hand_over_fires_on_time_with_the_same_track() -> None:
    first, second = Recorder(), Recorder()
    state = pipeline.new_state(StandingPerson(), [LOITERING])
    pipeline.run(frames(0, 7), state, first, handing_over=lambda: True)
    assert first.hits == []  # nothing closed at the hand-over either

    resumed = pipeline.thaw(pipeline.freeze(state), StandingPerson(), [LOITERING])
    pipeline.run(frames(7, 13), resumed, second)

    fired = [h for h in second.hits if not h.closed]
    assert fired, "the dwell started in the first slice counts"
    assert fired[0].track_id == 1 and fired[0].started_at == T0 + timedelta(seconds=1)  # seen twice: confirmed
    assert fired[0].last_seen_at == T0 + timedelta(seconds=11)


def test_without_a_hand_over_the_dwell_starts_again() -> None:
    first, second = Recorder(), Recorder()
    pipeline.run(frames(0, 7), pipeline.new_state(StandingPerson(), [LOITERING]), first)
    pipeline.run(frames(7, 13), pipeline.new_state(StandingPerson(), [LOITERING]), second)
    assert [h for h in second.hits if not h.closed] == []


def test_state_of_a_deleted_rule_is_dropped_on_resume() -> None:
    state = pipeline.new_state(StandingPerson(), [LOITERING])
    pipeline.run(frames(0, 7), state, Recorder(), handing_over=lambda: True)
    other = ZoneRuleSpec(rule_id=8, polygon=LOITERING.polygon, kind="loitering", dwell_s=3.0)
    resumed = pipeline.thaw(pipeline.freeze(state), StandingPerson(), [other])
    recorder = Recorder()
    pipeline.run(frames(7, 13), resumed, recorder)
    assert {h.rule_id for h in recorder.hits} == {8}
    assert min(h.started_at for h in recorder.hits) >= T0 + timedelta(seconds=7)


def test_the_worker_hands_state_over_through_redis_once(monkeypatch) -> None:
    from detection import tasks

    monkeypatch.setattr(tasks, "worker_detector", StandingPerson)
    state = pipeline.new_state(StandingPerson(), [LOITERING])
    pipeline.run(frames(0, 5), state, Recorder(), handing_over=lambda: True)
    camera_id = 987_654  # a key of its own on the shared Redis

    tasks.hand_over_state(camera_id, state)
    resumed = tasks.resume_state(camera_id, [LOITERING])

    assert resumed is not None and [t.id for t in resumed.tracker.tracks] == [1]
    assert tasks.resume_state(camera_id, [LOITERING]) is None  # taken once: a later slice starts afresh
