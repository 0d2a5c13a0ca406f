"""The supervisor on scripted sources and a fake clock: reconnects, backoff, health, stop."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from detection.pipeline import LoopStats
from detection.sources import PermanentSourceError, SourceError, UnsupportedSource
from detection.supervisor import Health, Supervisor, SupervisorConfig, backoff_delay
from detection.types import Frame


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Reporter:
    """Records health reports; stops after `stop_after` calls of keep_going."""

    def __init__(self, stop_after: int = 10_000) -> None:
        self.health: list[tuple[Health, str, int]] = []
        self.checks, self.stop_after = 0, stop_after

    def keep_going(self, stats: LoopStats) -> bool:
        self.checks += 1
        return self.checks < self.stop_after

    def on_health(self, health: Health, reason: str, failures: int) -> None:
        self.health.append((health, reason, failures))

    @property
    def states(self) -> list[Health]:
        return [h for h, _, _ in self.health]


def frame(i: int = 0) -> Frame:
    return Frame(index=i, time=datetime(2024, 1, 1, tzinfo=UTC), image=np.zeros((2, 2, 3), np.uint8))


def script(*attempts: object, clock: Clock, frame_every_s: float = 0.5):
    """Each call of the returned opener plays the next attempt: a frame count (then the source ends),
    an exception (raised at once), or (frame count, exception) for a source that drops mid-stream."""
    plays = iter(attempts)

    def open_source() -> Iterator[Frame]:
        outcome = next(plays)
        if isinstance(outcome, Exception):
            count, error = 0, outcome
        else:
            count, error = outcome if isinstance(outcome, tuple) else (outcome, None)
        for i in range(count):
            clock.now += frame_every_s
            yield frame(i)
        if error is not None:
            raise error

    return open_source


def supervise(opener, reporter: Reporter, clock: Clock, **config: object) -> tuple[Supervisor, list[Frame]]:
    settings = SupervisorConfig(**({"analysis_fps": 2.0, "rate_window_s": 4.0} | config))  # type: ignore[arg-type]
    supervisor = Supervisor(
        opener, settings, reporter, LoopStats(), clock=clock, sleep=clock.sleep, rng=random.Random(1)
    )
    return supervisor, list(supervisor.frames())


def test_backoff_grows_exponentially_under_a_cap_with_full_jitter() -> None:
    config = SupervisorConfig(analysis_fps=2, backoff_base_s=0.5, backoff_cap_s=3.0)
    rng = random.Random(7)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (30, 3.0)]:
        delays = [backoff_delay(failures, config, rng) for _ in range(300)]
        assert 0 <= min(delays) < ceiling * 0.1, "full jitter reaches down to zero"
        assert ceiling * 0.9 < max(delays) <= ceiling


def test_a_dropped_source_is_reconnected_and_reported_offline_then_online() -> None:
    clock, reporter = Clock(), Reporter()
    opener = script((3, SourceError("stalled")), SourceError("refused"), 2, clock=clock)
    supervisor, frames = supervise(opener, reporter, clock, restart_when_ended=False)
    assert len(frames) == 5 and supervisor.outcome == "ended"
    assert reporter.health == [
        (Health.ONLINE, "", 0),
        (Health.OFFLINE, "stalled", 1),
        (Health.OFFLINE, "refused", 2),  # repeated: the outage goes on
        (Health.ONLINE, "", 2),  # back, after 2 failed attempts
    ]


def test_a_live_stream_that_ends_is_reconnected_until_the_reporter_says_stop() -> None:
    clock, reporter = Clock(), Reporter(stop_after=4)
    opener = script(*[2] * 10, clock=clock)
    supervisor, frames = supervise(opener, reporter, clock)
    assert supervisor.outcome == "stopped"
    assert reporter.health[1] == (Health.OFFLINE, "the stream ended", 1)
    assert len(frames) >= 4


def test_the_wait_between_attempts_is_capped_and_keeps_asking_to_go_on() -> None:
    clock, reporter = Clock(), Reporter(stop_after=60)
    opener = script(*[SourceError("connection refused")] * 100, clock=clock)
    supervisor, frames = supervise(opener, reporter, clock, backoff_cap_s=3.0, tick_s=1.0)
    assert frames == [] and supervisor.outcome == "stopped"
    assert max(clock.sleeps) <= 1.0, "the lease is renewed at least once a second while waiting"
    assert reporter.states == [Health.OFFLINE] * len(reporter.states)
    attempts = len(reporter.health)
    waited = sum(clock.sleeps)
    assert waited / attempts <= 3.0


@pytest.mark.parametrize(
    "error", [PermanentSourceError("the file is empty (0 bytes)"), UnsupportedSource("unsupported URL scheme")]
)
def test_a_source_that_can_never_work_fails_once_without_retrying(error: Exception) -> None:
    clock, reporter = Clock(), Reporter()
    opener = script(error, 5, clock=clock)
    supervisor, frames = supervise(opener, reporter, clock)
    assert frames == [] and supervisor.outcome == "failed"
    assert reporter.health == [(Health.FAILED, str(error), 0)]
    assert clock.sleeps == [] and reporter.checks == 0, "no retry, no wait"


def test_a_source_that_fails_at_start_is_retried() -> None:
    clock, reporter = Clock(), Reporter()
    opener = script(SourceError("cannot open: no answer within 10 s"), 3, clock=clock)
    supervisor, frames = supervise(opener, reporter, clock, restart_when_ended=False)
    assert len(frames) == 3
    assert reporter.states == [Health.OFFLINE, Health.ONLINE]


def test_a_source_delivering_under_half_the_analysis_rate_is_degraded_and_recovers() -> None:
    clock, reporter = Clock(), Reporter()
    slow_then_fast = iter([1.0] * 10 + [0.5] * 12)  # 1 fps then 2 fps, for 2 fps wanted

    def opener() -> Iterator[Frame]:
        for i, gap in enumerate(slow_then_fast):
            clock.now += gap
            yield frame(i)

    reported_at: list[float] = []
    reporter.on_health = lambda *report: (reporter.health.append(report), reported_at.append(clock.now))  # type: ignore[method-assign]
    supervise(opener, reporter, clock, analysis_fps=2.5, rate_window_s=4.0, restart_when_ended=False)
    assert reporter.states == [Health.ONLINE, Health.DEGRADED, Health.ONLINE]
    assert reporter.health[1][1] == "1.0 of 2.5 frames per second arrive for analysis"
    assert reported_at[1] == 1000.0 + 4.0, "judged as soon as a full window since connecting is seen"
    assert reported_at[2] > 1000.0 + 10, "back online only once frames come faster"


def test_a_fresh_connection_is_not_judged_degraded_before_its_window_is_full() -> None:
    clock, reporter = Clock(), Reporter()
    opener = script(3, clock=clock, frame_every_s=1.0)  # 1 fps, but only 3 s seen of a 4 s window
    supervise(opener, reporter, clock, analysis_fps=2.5, rate_window_s=4.0, restart_when_ended=False)
    assert reporter.states == [Health.ONLINE]
