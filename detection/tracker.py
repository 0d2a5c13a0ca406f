"""The tracker: links per-frame detections into tubes (tracks), ByteTrack-style, and turns each
tube's action scores into action segments (who did what, from when to when).

Every track has a constant-velocity Kalman filter on its box centre and size, stepped by the real
time between frames (analysis rates vary, frames get dropped). Each frame, detections are matched
to the filters' predicted boxes by IoU with an optimal assignment, in ByteTrack's order:
  1. confident detections (score >= high_thresh) to confirmed tracks, lost ones included;
  2. weak detections (low_thresh <= score < high_thresh) to the confirmed tracks still unmatched:
     an occluded or blurred actor keeps its tube, but a weak detection never starts one;
  3. the confident detections left over to tentative tracks (seen fewer than min_hits times);
  4. confident detections still left over start tentative tracks.
A track missing for up to max_missing_s is predicted forward and re-acquired with the same id.

Action scores (from an action model; empty from plain detectors) are smoothed along the tube by a
time-weighted mean (an exponential moving average in time, also at irregular rates), and each
action's smoothed score goes through hysteresis: an action held at >= on_score for min_duration_s
opens a segment, which ends when the score drops below off_score or the track is dropped. Finished
segments wait in the tracker for `pop_segments` (a bounded number of them).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from detection.types import ACTIONS_BY_CLASS, BoxXYXY, Detection

HISTORY_LEN = 600
STATE_VERSION = 2  # bump when the pickled layout changes: a hand-over from older code starts afresh
_INFEASIBLE = 1e6  # assignment cost of a pair that must not match


@dataclass(frozen=True)
class TrackerConfig:
    # Association
    high_thresh: float = 0.5  # detections at least this confident match first and may start tracks
    low_thresh: float = 0.1  # weaker ones (down to this) only extend confirmed tracks
    min_iou: float = 0.2  # least IoU with a track's predicted box for a confident detection
    low_min_iou: float = 0.5  # ... and for a weak one (stricter: weak detections are often clutter)
    min_hits: int = 2  # detections before a track is reported (filters one-frame flickers)
    max_missing_s: float = 2.0  # how long a track survives without a matching detection
    # Kalman filter, in box sizes (width for x and width, height for y and height) so one setting
    # fits near and far actors
    measurement_std: float = 0.05  # detector box noise
    accel_std: float = 0.5  # unmodelled acceleration of the centre, sizes / s^2
    size_accel_std: float = 0.5  # ... of the box size
    init_velocity_std: float = 2.0  # velocity uncertainty of a new track, sizes / s
    # Actions
    action_tau_s: float = 0.5  # time constant of the action-score smoothing
    on_score: float = 0.5  # a segment opens once the smoothed score holds at least this ...
    min_duration_s: float = 0.3  # ... for this long
    off_score: float = 0.35  # ... and ends when it drops below this
    max_segment_boxes: int = 600  # boxes kept per segment; older ones are thinned out
    max_pending_segments: int = 200  # finished segments kept for pop_segments; oldest dropped first


def iou(a: BoxXYXY, b: BoxXYXY) -> float:
    ix1, iy1, ix2, iy2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    if inter == 0.0:
        return 0.0
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), both x1 y1 x2 y2: (N, M)."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(inter > 0.0, inter / np.maximum(union, 1e-9), 0.0)


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a (N, M) cost matrix (the Hungarian method with potentials,
    O(n^2 m)); returns (rows, cols) of min(N, M) pairs, rows ascending, like scipy's."""
    cost = np.asarray(cost, dtype=float)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    row_of = np.zeros(m + 1, dtype=int)  # column j (1-based) -> its row (1-based), 0 = free
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        row_of[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:  # grow an alternating tree from row i until it reaches a free column
            used[j0] = True
            i0 = row_of[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:  # flip the path
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    cols = np.nonzero(row_of[1:])[0]
    rows = row_of[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


def _components(feasible: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Connected groups of rows and columns linked by feasible pairs: actors far apart are matched
    on their own, so the assignment only ever runs on the few that compete for the same boxes."""
    n, m = feasible.shape
    row_edges = [np.nonzero(feasible[i])[0].tolist() for i in range(n)]
    col_edges = [np.nonzero(feasible[:, j])[0].tolist() for j in range(m)]
    seen_rows, seen_cols = [False] * n, [False] * m
    groups = []
    for start in range(n):
        if seen_rows[start] or not row_edges[start]:
            continue
        rows, cols, stack = [], [], [start]
        seen_rows[start] = True
        while stack:
            i = stack.pop()
            rows.append(i)
            for j in row_edges[i]:
                if seen_cols[j]:
                    continue
                seen_cols[j] = True
                cols.append(j)
                for k in col_edges[j]:
                    if not seen_rows[k]:
                        seen_rows[k] = True
                        stack.append(k)
        groups.append((rows, cols))
    return groups


def associate(overlap: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, column) pairs maximizing the number of matches with IoU >= min_iou, then total IoU.
    Pairs that must never match (another class) carry an IoU of -1."""
    feasible = overlap >= min_iou
    rows_i, cols_j = np.nonzero(feasible)
    # The usual case, an actor overlapping only its own box, needs no assignment.
    alone = (feasible.sum(axis=1)[rows_i] == 1) & (feasible.sum(axis=0)[cols_j] == 1)
    pairs = list(zip(rows_i[alone].tolist(), cols_j[alone].tolist(), strict=True))
    contested_rows, contested_cols = np.unique(rows_i[~alone]), np.unique(cols_j[~alone])
    if not len(contested_rows):
        return pairs
    contested = overlap[np.ix_(contested_rows, contested_cols)]
    for rows, cols in _components(contested >= min_iou):
        sub = contested[np.ix_(rows, cols)]
        cost = np.where(sub >= min_iou, 1.0 - sub, _INFEASIBLE)
        for r, c in zip(*linear_sum_assignment(cost), strict=True):
            if cost[r, c] < _INFEASIBLE:
                pairs.append((int(contested_rows[rows[r]]), int(contested_cols[cols[c]])))
    return pairs


# --- Kalman filter ----------------------------------------------------------------------------
# All tracks' filters live in one (N, 5, 4) array: rows are position, velocity and the three
# distinct entries of each coordinate's 2x2 covariance (var pos, cov pos-vel, var vel); columns are
# cx, cy, w, h. With diagonal noise the four coordinates are independent, so this is the exact
# constant-velocity filter on (cx, cy, w, h), stepped for every track at once.
POS, VEL, PPP, PPV, PVV = range(5)


def _xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            (boxes[:, 0] + boxes[:, 2]) / 2,
            (boxes[:, 1] + boxes[:, 3]) / 2,
            boxes[:, 2] - boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
        ],
        axis=1,
    )


def _cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    half_w, half_h = z[:, 2] / 2, z[:, 3] / 2
    return np.stack([z[:, 0] - half_w, z[:, 1] - half_h, z[:, 0] + half_w, z[:, 1] + half_h], axis=1)


def _sizes(z: np.ndarray) -> np.ndarray:
    """Per coordinate, the box size its noise scales with: (w, h, w, h), at least a pixel."""
    return np.maximum(z[:, [2, 3, 2, 3]], 1.0)


def _kf_new(z: np.ndarray, config: TrackerConfig) -> np.ndarray:
    kf = np.zeros((len(z), 5, 4))
    size = _sizes(z)
    kf[:, POS] = z
    kf[:, PPP] = (2 * config.measurement_std * size) ** 2
    kf[:, PVV] = (config.init_velocity_std * size) ** 2
    return kf


def _kf_predict(kf: np.ndarray, dt: float, config: TrackerConfig) -> None:
    """Advance every filter by dt seconds, in place; process noise grows with dt."""
    if dt <= 0.0 or len(kf) == 0:
        return
    accel = np.array([config.accel_std, config.accel_std, config.size_accel_std, config.size_accel_std])
    q = (accel * _sizes(kf[:, POS])) ** 2  # white-noise acceleration density per coordinate
    kf[:, POS] += kf[:, VEL] * dt
    kf[:, PPP] += 2 * dt * kf[:, PPV] + dt * dt * kf[:, PVV] + q * dt**3 / 3
    kf[:, PPV] += dt * kf[:, PVV] + q * dt**2 / 2
    kf[:, PVV] += q * dt
    np.maximum(kf[:, POS, 2:], 1.0, out=kf[:, POS, 2:])  # a box never shrinks below a pixel


def _kf_correct(kf: np.ndarray, z: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """The filters (M, 5, 4) corrected by measurements z (M, 4); returns a new array."""
    kf = kf.copy()
    r = (config.measurement_std * _sizes(kf[:, POS])) ** 2
    ppp, ppv, pvv = kf[:, PPP].copy(), kf[:, PPV].copy(), kf[:, PVV].copy()
    innovation_var = ppp + r
    gain_p, gain_v = ppp / innovation_var, ppv / innovation_var
    innovation = z - kf[:, POS]
    kf[:, POS] += gain_p * innovation
    kf[:, VEL] += gain_v * innovation
    kf[:, PPP] = (1 - gain_p) * ppp
    kf[:, PPV] = (1 - gain_p) * ppv
    kf[:, PVV] = pvv - gain_v * ppv
    return kf


# --- Tracks and action segments ---------------------------------------------------------------


@dataclass
class Track:
    id: int
    label: str
    box: BoxXYXY  # the latest matched detection's box
    score: float  # ... and its score
    first_seen: datetime
    last_seen: datetime
    hits: int = 1
    # Recent boxes only: a track that stays for hours must not grow without bound.
    history: deque[tuple[datetime, BoxXYXY]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    # Action name -> smoothed probability; empty while the detections carry no action scores.
    actions: dict[str, float] = field(default_factory=dict)
    velocity: tuple[float, float] = (0.0, 0.0)  # of the box centre, px/s, from the Kalman filter
    smoothed_box: BoxXYXY | None = None  # the filter's box: corrected when matched, predicted when missing


@dataclass
class ActionSegment:
    """One actor doing one action, from start to end (a spatio-temporal tube segment)."""

    track_id: int
    label: str
    action: str
    start: datetime
    end: datetime  # the last frame with the smoothed score at on_score or more
    boxes: list[tuple[datetime, BoxXYXY]]
    score: float  # the highest smoothed score during the segment

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class _ActionRun:
    """A track's action above on_score: a candidate until it held for min_duration_s, then open
    until the score drops below off_score. The segment spans from the first to the last frame at
    on_score or more: dips that stay above off_score are bridged, the final one is left out."""

    since: datetime
    last_on: datetime  # the latest frame at on_score or more
    score: float
    boxes: list[tuple[datetime, BoxXYXY]]
    open: bool = False


@dataclass
class _Tube:
    """Per-track state that readers of Track need not see."""

    actions_at: datetime | None = None  # when the action scores were last updated
    action_weight: float = 0.0  # the decayed count of observations behind the smoothed scores
    runs: dict[str, _ActionRun] = field(default_factory=dict)


def _observed_actions(detection: Detection) -> dict[str, float]:
    """The detection's scores, with its class's actions it does not mention counted as 0."""
    observed = dict.fromkeys(ACTIONS_BY_CLASS.get(detection.label, ()), 0.0)
    observed.update((name, float(p)) for name, p in detection.actions.items())
    return observed


def smoothing_gain(weight: float, dt: float, tau_s: float) -> tuple[float, float]:
    """Time-weighted mean of the observations, each weighing exp(-age / tau): returns the weight of
    the observations so far (dt after the last, plus a new one) and the new one's share of the mean.
    Steady at a fixed rate the share is 1 - exp(-dt / tau), an exponential moving average; on a new
    tube the first few observations are averaged rather than the first taken as the truth."""
    decay = 0.0 if tau_s <= 0.0 else math.exp(-max(dt, 0.0) / tau_s)
    weight = decay * weight + 1.0
    return weight, 1.0 / weight


def smooth_actions(previous: dict[str, float], observed: dict[str, float], gain: float) -> dict[str, float]:
    smoothed = dict(previous)
    for name, p in observed.items():
        before = previous.get(name)
        smoothed[name] = p if before is None else before + gain * (p - before)
    return smoothed


class ByteTracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.state_version = STATE_VERSION
        self.tracks: list[Track] = []  # live and lost tracks, oldest first; row i of _kf is tracks[i]
        self._kf = np.zeros((0, 5, 4))
        self._tubes: dict[int, _Tube] = {}
        self._finished: deque[ActionSegment] = deque(maxlen=self.config.max_pending_segments)
        self._time: datetime | None = None
        self._next_id = 1

    def update(self, detections: list[Detection], at: datetime) -> list[Track]:
        """Match detections to tracks; return the confirmed tracks seen in this frame."""
        # Drop lost tracks before matching: after a stall with no frames, a stale track must not match.
        self._drop_lost(at)
        dt = 0.0 if self._time is None else (at - self._time).total_seconds()
        self._time = at if self._time is None else max(self._time, at)
        _kf_predict(self._kf, dt, self.config)
        for track, box in zip(self.tracks, self._predicted_boxes(), strict=True):
            track.smoothed_box = box
        self._match(detections, at)
        return [t for t in self.tracks if t.last_seen == at and t.hits >= self.config.min_hits]

    # --- Association ----------------------------------------------------------------------------

    def _match(self, detections: list[Detection], at: datetime) -> None:
        cfg = self.config
        high = [d for d in detections if d.score >= cfg.high_thresh]
        low = [d for d in detections if cfg.low_thresh <= d.score < cfg.high_thresh]
        confirmed = [i for i, t in enumerate(self.tracks) if t.hits >= cfg.min_hits]
        tentative = [i for i, t in enumerate(self.tracks) if t.hits < cfg.min_hits]
        matches, high_left = self._stage(confirmed, high, cfg.min_iou)
        matched = {row for row, _ in matches}
        low_matches, _ = self._stage([i for i in confirmed if i not in matched], low, cfg.low_min_iou)
        late_matches, high_left = self._stage(tentative, high_left, cfg.min_iou)
        self._apply(matches + low_matches + late_matches, at)
        for detection in high_left:
            self._start(detection, at)

    def _stage(
        self, track_rows: list[int], detections: list[Detection], min_iou: float
    ) -> tuple[list[tuple[int, Detection]], list[Detection]]:
        """Optimal IoU matching of some tracks to some detections; returns (pairs, detections left)."""
        if not track_rows or not detections:
            return [], detections
        predicted = _cxcywh_to_xyxy(self._kf[track_rows, POS])
        overlap = iou_matrix(predicted, np.array([d.box for d in detections], dtype=float))
        track_labels = np.array([self.tracks[i].label for i in track_rows])
        same_class = track_labels[:, None] == np.array([d.label for d in detections])[None, :]
        pairs = associate(np.where(same_class, overlap, -1.0), min_iou)
        taken = {c for _, c in pairs}
        return [(track_rows[r], detections[c]) for r, c in pairs], [
            d for j, d in enumerate(detections) if j not in taken
        ]

    def _predicted_boxes(self) -> list[BoxXYXY]:
        return [(float(a), float(b), float(c), float(d)) for a, b, c, d in _cxcywh_to_xyxy(self._kf[:, POS])]

    # --- Track bookkeeping ----------------------------------------------------------------------

    def _apply(self, matches: list[tuple[int, Detection]], at: datetime) -> None:
        if not matches:
            return
        rows = np.array([row for row, _ in matches])
        z = _xyxy_to_cxcywh(np.array([d.box for _, d in matches], dtype=float))
        self._kf[rows] = _kf_correct(self._kf[rows], z, self.config)
        corrected = _cxcywh_to_xyxy(self._kf[rows, POS])
        for (row, detection), box, vel in zip(matches, corrected, self._kf[rows, VEL], strict=True):
            track = self.tracks[row]
            track.box, track.score, track.last_seen = detection.box, detection.score, at
            track.hits += 1
            track.history.append((at, detection.box))
            track.velocity = (float(vel[0]), float(vel[1]))
            track.smoothed_box = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            self._observe_actions(track, detection, at)

    def _start(self, detection: Detection, at: datetime) -> None:
        track = Track(self._next_id, detection.label, detection.box, detection.score, at, at)
        track.history.append((at, detection.box))
        track.smoothed_box = detection.box
        self._next_id += 1
        self.tracks.append(track)
        z = _xyxy_to_cxcywh(np.array([detection.box], dtype=float))
        self._kf = np.concatenate([self._kf, _kf_new(z, self.config)])
        self._tubes[track.id] = _Tube()
        self._observe_actions(track, detection, at)

    def _drop_lost(self, at: datetime) -> None:
        keep = [(at - t.last_seen).total_seconds() <= self.config.max_missing_s for t in self.tracks]
        if all(keep):
            return
        for track, kept in zip(self.tracks, keep, strict=True):
            if not kept:
                self._end_runs(track, self._tubes.pop(track.id), track.last_seen)
        self.tracks = [t for t, kept in zip(self.tracks, keep, strict=True) if kept]
        self._kf = self._kf[np.array(keep, dtype=bool)]

    # --- Actions --------------------------------------------------------------------------------

    def _observe_actions(self, track: Track, detection: Detection, at: datetime) -> None:
        if not detection.actions:
            return  # a detector that scores no actions: nothing to smooth, nothing to segment
        tube = self._tubes[track.id]
        dt = 0.0 if tube.actions_at is None else (at - tube.actions_at).total_seconds()
        tube.action_weight, gain = smoothing_gain(tube.action_weight, dt, self.config.action_tau_s)
        track.actions = smooth_actions(track.actions, _observed_actions(detection), gain)
        tube.actions_at = at
        on, runs = self.config.on_score, tube.runs
        for action, score in track.actions.items():
            if score >= on or action in runs:  # the rest have nothing to step
                self._step_run(track, tube, action, score, at)

    def _step_run(self, track: Track, tube: _Tube, action: str, score: float, at: datetime) -> None:
        """Hysteresis on one action's smoothed score."""
        cfg = self.config
        run = tube.runs.get(action)
        if run is None:
            if score < cfg.on_score:
                return
            run = tube.runs[action] = _ActionRun(at, at, score, [])
        elif score < (cfg.off_score if run.open else cfg.on_score):
            del tube.runs[action]
            if run.open:
                self._finish(track, action, run, run.last_on)
            return
        if score >= cfg.on_score:
            run.last_on = at
        run.score = max(run.score, score)
        run.boxes.append((at, track.box))
        if len(run.boxes) > cfg.max_segment_boxes:
            run.boxes = run.boxes[::2]
        if (at - run.since).total_seconds() >= cfg.min_duration_s:
            run.open = True

    def _finish(self, track: Track, action: str, run: _ActionRun, end: datetime) -> None:
        boxes = run.boxes  # the run ends here: its list becomes the segment's
        while boxes and boxes[-1][0] > end:  # frames of a final dip between off_score and on_score
            boxes.pop()
        self._finished.append(ActionSegment(track.id, track.label, action, run.since, end, boxes, run.score))

    def _end_runs(self, track: Track, tube: _Tube, end: datetime) -> None:
        for action, run in tube.runs.items():
            if run.open:
                self._finish(track, action, run, min(run.last_on, end))
        tube.runs.clear()

    def pop_segments(self) -> list[ActionSegment]:
        """Action segments finished since the last call (each is returned once)."""
        finished = list(self._finished)
        self._finished.clear()
        return finished

    def open_segments(self) -> list[ActionSegment]:
        """Segments still going on (held long enough, not ended yet), as they stand now."""
        by_id = {t.id: t for t in self.tracks}
        return [
            ActionSegment(track_id, by_id[track_id].label, action, run.since, run.last_on, list(run.boxes), run.score)
            for track_id, tube in self._tubes.items()
            for action, run in tube.runs.items()
            if run.open
        ]

    def close_all(self, at: datetime) -> list[ActionSegment]:
        """The analysis stops at `at`: end every open segment at its track's last frame (no later than
        `at`) and return all finished segments not yet popped."""
        for track in self.tracks:
            self._end_runs(track, self._tubes[track.id], min(track.last_seen, at))
        return self.pop_segments()
