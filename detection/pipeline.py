"""The camera analysis loop: a sequence of small stages over one shared state.

source -> detector -> tracker -> rule engine -> sink. Frames stay in this process; only results
leave it, through the sink (which the Celery adapter implements with Django services).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from detection.rules import RuleHit, ZoneRuleEngine, ZoneRuleSpec
from detection.tracker import STATE_VERSION, ByteTracker, Track, TrackerConfig
from detection.types import Detection, Detector, Frame

log = logging.getLogger(__name__)


class ResultSink(Protocol):
    def on_frame(self, frame: Frame, tracks: Sequence[Track]) -> None:
        """Every analysed frame: live activity, snapshots (the sink throttles)."""

    def on_hits(self, frame: Frame, hits: Sequence[RuleHit], tracks: Sequence[Track]) -> None:
        """Rule hits of this frame (never called with an empty list)."""

    def keep_going(self, stats: LoopStats) -> bool:
        """Called about once a second: renew the lease, report health; False stops the loop."""


@dataclass
class LoopStats:
    frames: int = 0
    started: float = field(default_factory=time.monotonic)
    last_frame_monotonic: float | None = None
    window_frames: int = 0
    window_started: float = field(default_factory=time.monotonic)
    fps: float = 0.0

    def count_frame(self, now: float) -> None:
        self.frames += 1
        self.window_frames += 1
        self.last_frame_monotonic = now

    def roll_window(self, now: float) -> None:
        elapsed = now - self.window_started
        if elapsed > 0:
            self.fps = self.window_frames / elapsed
        self.window_frames, self.window_started = 0, now


@dataclass
class CameraState:
    detector: Detector
    tracker: ByteTracker
    engine: ZoneRuleEngine
    stats: LoopStats = field(default_factory=LoopStats)


def new_state(detector: Detector, rules: Sequence[ZoneRuleSpec]) -> CameraState:
    return CameraState(detector=detector, tracker=ByteTracker(tracker_config(detector)), engine=ZoneRuleEngine(rules))


def tracker_config(detector: Detector) -> TrackerConfig:
    """The tracker's settings for this detector: its scores may need their own start score."""
    start = getattr(detector, "track_start_score", None)
    return TrackerConfig() if start is None else replace(TrackerConfig(), high_thresh=float(start))


def freeze(state: CameraState) -> bytes:
    """Tracks and rule segments, for the task that analyses this camera next (a slice hand-over):
    a person loitering across the hand-over keeps their track and their dwell time."""
    return pickle.dumps((state.tracker, state.engine), protocol=pickle.HIGHEST_PROTOCOL)


def thaw(blob: bytes, detector: Detector, rules: Sequence[ZoneRuleSpec]) -> CameraState:
    """The state `freeze` saved, carried on with the current detector and rules."""
    tracker, engine = pickle.loads(blob)  # noqa: S301  (written by our own workers, kept in our own Redis)
    if not isinstance(engine, ZoneRuleEngine) or not isinstance(tracker, ByteTracker):
        raise TypeError("not a frozen camera state")
    if getattr(tracker, "state_version", None) != STATE_VERSION:
        raise TypeError("a camera state frozen by another version of the tracker")
    engine.adopt(rules)
    return CameraState(detector=detector, tracker=tracker, engine=engine)


def detect_stage(state: CameraState, frame: Frame) -> list[Detection]:
    return state.detector.detect(frame.image)


def track_stage(state: CameraState, frame: Frame, detections: list[Detection]) -> list[Track]:
    return state.tracker.update(detections, frame.time)


def rules_stage(state: CameraState, frame: Frame, tracks: list[Track]) -> list[RuleHit]:
    height, width = frame.image.shape[:2]
    return state.engine.step(tracks, frame.time, width, height)


def process_frame(state: CameraState, frame: Frame, sink: ResultSink) -> None:
    tracks = track_stage(state, frame, detect_stage(state, frame))
    # The rule engine keeps its own segments (per rule); the tracker's are not stored by the worker,
    # so they are taken each frame and do not pile up in the state handed over between tasks.
    state.tracker.pop_segments()
    hits = rules_stage(state, frame, tracks)
    sink.on_frame(frame, tracks)
    if hits:
        sink.on_hits(frame, hits, tracks)


def run(
    frames: Iterable[Frame],
    state: CameraState,
    sink: ResultSink,
    *,
    check_every_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    handing_over: Callable[[], bool] = lambda: False,
) -> LoopStats:
    """Analyse frames until the source ends or the sink says stop; open segments are closed, unless
    the camera is being handed over to the next task, which carries them on (see `freeze`)."""
    stats = state.stats
    last_check = clock()
    last_frame: Frame | None = None
    try:
        for frame in frames:
            process_frame(state, frame, sink)
            last_frame = frame
            now = clock()
            stats.count_frame(now)
            if now - last_check >= check_every_s:
                stats.roll_window(now)
                last_check = now
                if not sink.keep_going(stats):
                    break
    finally:
        closing = [] if handing_over() else state.engine.close_all()
        if closing and last_frame is not None:
            sink.on_hits(last_frame, closing, [])
    return stats
