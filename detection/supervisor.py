"""Keeps a camera's frames coming, or says loudly why not.

Wraps a source in reconnects (capped exponential backoff with full jitter) and a health state
machine: online, degraded (connected, but delivering under half the analysis rate), offline (no
frames: the reason), failed (the source can never work as configured: no retry until the camera is
saved again). Pure: the Celery adapter passes a reporter that stores health and renews the lease.

A stall while connected surfaces here as a SourceError from the source's read timeout (PyAV's
`timeout=(open, read)` interrupts the blocked read), so it reconnects like any other drop.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from detection.pipeline import LoopStats
from detection.sources import PermanentSourceError, SourceError, UnsupportedSource
from detection.types import Frame


class Health(StrEnum):
    # The values are monitor.models.HealthState's.
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    FAILED = "failed"


@dataclass(frozen=True)
class SupervisorConfig:
    analysis_fps: float  # what analysis asks of the source
    backoff_base_s: float = 0.5  # first retry waits up to this
    backoff_cap_s: float = 3.0  # never longer: a camera is back within this (plus its connect time)
    degraded_below: float = 0.5  # delivered / wanted rate under this while connected: degraded
    rate_window_s: float = 10.0  # how far back the delivered rate is measured
    tick_s: float = 1.0  # while waiting to retry, the reporter is asked this often to keep going
    restart_when_ended: bool = True  # a live stream that ends has dropped; a file that ends is done


def backoff_delay(failures: int, config: SupervisorConfig, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(failures-1))], so cameras behind one server
    that went down together do not all come knocking in the same instant when it returns."""
    ceiling = min(config.backoff_cap_s, config.backoff_base_s * 2 ** max(0, failures - 1))
    return rng.uniform(0.0, ceiling)


class Reporter(Protocol):
    def keep_going(self, stats: LoopStats) -> bool:
        """Renew the lease, check the slice deadline; False stops the supervisor (and the loop)."""

    def on_health(self, health: Health, reason: str, failures: int) -> None:
        """A change of health; OFFLINE is repeated after every failed attempt (the outage goes on)."""


class RateMeter:
    """Frames delivered per second over the last `window_s`, once that much time has been seen."""

    def __init__(self, window_s: float, now: float) -> None:
        self.window_s, self.since = window_s, now
        self.times: collections.deque[float] = collections.deque()

    def add(self, now: float) -> None:
        self.times.append(now)
        while self.times and self.times[0] <= now - self.window_s:
            self.times.popleft()

    def rate(self, now: float) -> float | None:
        if now - self.since < self.window_s:
            return None  # too early to judge: a fresh connection is still filling its window
        return len(self.times) / self.window_s


class Supervisor:
    """Yields frames from `open_source()` (a fresh connection each call) for as long as the reporter
    wants them; after it stops, `outcome` says why: "stopped", "ended" or "failed"."""

    def __init__(
        self,
        open_source: Callable[[], Iterator[Frame]],
        config: SupervisorConfig,
        reporter: Reporter,
        stats: LoopStats,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.open_source, self.config, self.reporter, self.stats = open_source, config, reporter, stats
        self.clock, self.sleep = clock, sleep
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not cryptography)
        self.health: Health | None = None
        self.failures = 0  # failed attempts since frames last flowed
        self.outcome = ""

    def frames(self) -> Generator[Frame]:
        while True:
            try:
                yield from self._connection()
            except (PermanentSourceError, UnsupportedSource) as exc:
                self._report(Health.FAILED, str(exc))
                self.outcome = "failed"
                return
            except SourceError as exc:
                reason = str(exc)
            else:
                if not self.config.restart_when_ended:
                    self.outcome = "ended"
                    return
                reason = "the stream ended"
            if not self._retry_after_failure(reason):
                self.outcome = "stopped"
                return

    def _connection(self) -> Iterator[Frame]:
        meter = RateMeter(self.config.rate_window_s, self.clock())
        for frame in self.open_source():
            now = self.clock()
            meter.add(now)
            self._assess(meter.rate(now))
            yield frame

    def _assess(self, rate: float | None) -> None:
        wanted = self.config.analysis_fps
        if rate is not None and rate < wanted * self.config.degraded_below:
            self._report(Health.DEGRADED, f"{rate:.1f} of {wanted:g} frames per second arrive for analysis")
        elif rate is not None or self.health not in (Health.ONLINE, Health.DEGRADED):
            self._report(Health.ONLINE, "")
        self.failures = 0

    def _retry_after_failure(self, reason: str) -> bool:
        """Report the outage, wait out the backoff while renewing the lease; False: stop."""
        self.failures += 1
        self._report(Health.OFFLINE, reason, repeat=True)
        return self._wait(backoff_delay(self.failures, self.config, self.rng))

    def _wait(self, delay_s: float) -> bool:
        end = self.clock() + delay_s
        while True:
            now = self.clock()
            self.stats.roll_window(now)  # no frames: the measured rate falls to 0
            if not self.reporter.keep_going(self.stats):
                return False
            if now >= end:
                return True
            self.sleep(min(self.config.tick_s, end - now))

    def _report(self, health: Health, reason: str, *, repeat: bool = False) -> None:
        if health == self.health and not repeat:
            return
        self.health = health
        self.reporter.on_health(health, reason, self.failures)
