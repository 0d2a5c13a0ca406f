"""Evaluation metrics for the action localizer, in the field's conventions (numpy only, no I/O).

- `average_precision`: VOC-style AP (area under the all-point precision envelope) of scored boxes
  matched greedily, by descending score, to truth boxes of the same frame at IoU >= 0.5; truths
  marked `ignore` (VOC's "difficult") make the detections on them count neither TP nor FP.
- `best_f1`: the best F1 of the same matched boxes over every score threshold.
- `frame_map`: frame-mAP, one AP per action over actor boxes scored actor score x action probability.
- `video_map`: video-mAP, the same over tubes matched by spatio-temporal IoU.
- `roc_auc`, `accuracy_at`, `best_accuracy`: clip-level classification.
- `clip_score`: one score per clip from per-frame localizer output (shared with the trainer).
- `counting_errors`: people counts against counts given once a second.

Undefined values (an AP without any truth, an AUC with one class only) are None, never NaN,
so results serialise to strict JSON.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from detection.types import BoxXYXY

# Outcome of one detection after matching.
TP, FP, IGNORED = 1, 0, -1


# --- boxes ------------------------------------------------------------------------------------


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of (N, 4) and (M, 4) x1, y1, x2, y2 boxes (0 where both are empty)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_iou(a: BoxXYXY, b: BoxXYXY) -> float:
    return float(iou_matrix(np.array(a), np.array(b))[0, 0])


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


# --- matching and AP --------------------------------------------------------------------------


def match_greedy(overlaps: np.ndarray, scores: np.ndarray, ignore: np.ndarray, threshold: float) -> np.ndarray:
    """TP, FP or IGNORED for each detection of one frame (or video), given its (D, G) overlaps.

    Detections, by descending score, each take the most-overlapping still unmatched regular truth
    with overlap >= threshold (TP). Failing that, one overlapping an ignore truth is IGNORED; an
    ignore truth absorbs any number of detections, as VOC's "difficult" boxes do. Else FP, which
    includes a second detection of an already matched truth.
    """
    ignore = np.asarray(ignore, bool)
    outcome = np.full(len(scores), FP, dtype=np.int8)
    taken = ignore.copy()  # ignore truths never make a TP
    for d in np.argsort(-np.asarray(scores, float), kind="stable"):
        row = overlaps[d]
        candidates = np.where(~taken & (row >= threshold), row, -1.0)
        if candidates.size and candidates.max() >= threshold:
            taken[int(candidates.argmax())] = True
            outcome[d] = TP
        elif np.any(ignore & (row >= threshold)):
            outcome[d] = IGNORED
    return outcome


def envelope_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2010 on): the area under the precision envelope, i.e. the
    precision at each recall replaced by the best precision at that recall or higher."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass(frozen=True, slots=True)
class APResult:
    ap: float | None  # None when there is no regular truth: AP is undefined
    n_truth: int  # regular (not ignored) truths: the recall denominator
    n_detections: int
    true_positives: int
    false_positives: int
    ignored: int  # detections that only matched an ignore truth

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def ap_from_outcomes(scores: np.ndarray, outcomes: np.ndarray, n_truth: int) -> APResult:
    """AP of detections whose outcomes are known; ties in score keep the detections' order."""
    scores, outcomes = np.asarray(scores, float), np.asarray(outcomes)
    counted = outcomes != IGNORED
    hits = outcomes[counted][np.argsort(-scores[counted], kind="stable")] == TP
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    ap = envelope_ap(tp / n_truth, tp / np.maximum(tp + fp, 1)) if n_truth else None
    return APResult(
        ap=ap,
        n_truth=n_truth,
        n_detections=len(scores),
        true_positives=int(hits.sum()),
        false_positives=int((~hits).sum()),
        ignored=int((~counted).sum()),
    )


@dataclass(frozen=True, slots=True)
class ScoredBox:
    key: Hashable  # the frame it belongs to: detections only match truths with the same key
    box: BoxXYXY
    score: float


@dataclass(frozen=True, slots=True)
class TruthBox:
    key: Hashable
    box: BoxXYXY
    ignore: bool = False


def average_precision(
    detections: Sequence[ScoredBox], truths: Sequence[TruthBox], *, iou_threshold: float = 0.5
) -> APResult:
    """VOC-style AP of `detections` against `truths`, matched per frame (see `match_greedy`)."""
    scores, outcomes = match_boxes(detections, truths, iou_threshold=iou_threshold)
    return ap_from_outcomes(scores, outcomes, sum(not t.ignore for t in truths))


def match_boxes(
    detections: Sequence[ScoredBox], truths: Sequence[TruthBox], *, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, outcomes): each detection's score and TP, FP or IGNORED, matched per frame."""
    truths_by_key: dict[Hashable, list[TruthBox]] = defaultdict(list)
    for truth in truths:
        truths_by_key[truth.key].append(truth)
    detections_by_key: dict[Hashable, list[int]] = defaultdict(list)
    for i, detection in enumerate(detections):
        detections_by_key[detection.key].append(i)
    scores = np.array([d.score for d in detections], float)
    outcomes = np.full(len(detections), FP, dtype=np.int8)
    for key, indices in detections_by_key.items():
        frame_truths = truths_by_key.get(key, [])
        overlaps = iou_matrix(np.array([detections[i].box for i in indices]), np.array([t.box for t in frame_truths]))
        ignore = np.array([t.ignore for t in frame_truths], bool)
        outcomes[indices] = match_greedy(overlaps, scores[indices], ignore, iou_threshold)
    return scores, outcomes


@dataclass(frozen=True, slots=True)
class F1Point:
    f1: float
    min_score: float | None  # the least score kept at that F1; None when nothing is kept
    precision: float
    recall: float


def best_f1(scores: np.ndarray, outcomes: np.ndarray, n_truth: int) -> F1Point:
    """The best F1 over every score threshold (keeping detections scored at least it); ignored
    detections count neither way. Ties in score are kept or dropped together."""
    scores, outcomes = np.asarray(scores, float), np.asarray(outcomes)
    counted = outcomes != IGNORED
    order = np.argsort(-scores[counted], kind="stable")
    ranked, hits = scores[counted][order], outcomes[counted][order] == TP
    best = F1Point(0.0, None, 0.0, 0.0)
    if not n_truth or not len(ranked):
        return best
    tp = np.cumsum(hits)
    last_of_score = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # a cut between scores only
    for i in last_of_score:
        precision, recall = tp[i] / (i + 1), tp[i] / n_truth
        f1 = 2 * precision * recall / (precision + recall) if tp[i] else 0.0
        if f1 > best.f1:
            best = F1Point(float(f1), float(ranked[i]), float(precision), float(recall))
    return best


# --- frame-mAP and video-mAP ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorBox:
    """A predicted actor in one frame."""

    key: Hashable  # the frame
    box: BoxXYXY
    score: float  # detection score
    actions: Mapping[str, float]  # action -> probability
    track: Hashable | None = None  # None: the actor belongs to no tube


@dataclass(frozen=True, slots=True)
class TruthActor:
    """An annotated actor in one frame and the actions it performs there."""

    key: Hashable
    box: BoxXYXY
    actions: frozenset[str]
    actor_id: Hashable | None = None  # the same person across frames: it makes the truth tubes


@dataclass(frozen=True, slots=True)
class MapResult:
    mean_ap: float | None  # mean over the actions that have truth; None if none has
    per_action: dict[str, APResult]

    def as_dict(self) -> dict[str, object]:
        return {"map": self.mean_ap, "per_action": {a: r.as_dict() for a, r in self.per_action.items()}}


def _mean_ap(per_action: Mapping[str, APResult]) -> float | None:
    defined = [r.ap for r in per_action.values() if r.ap is not None]
    return float(np.mean(defined)) if defined else None


def frame_map(
    predictions: Sequence[ActorBox],
    truths: Sequence[TruthActor],
    actions: Sequence[str],
    *,
    iou_threshold: float = 0.5,
) -> MapResult:
    """frame-mAP: per action, an AP over one detection per predicted actor (score = actor score x
    action probability) against the truth boxes whose action set holds that action."""
    per_action = {}
    for action in actions:
        detections = [ScoredBox(p.key, p.box, p.score * p.actions[action]) for p in predictions if action in p.actions]
        positives = [TruthBox(t.key, t.box) for t in truths if action in t.actions]
        per_action[action] = average_precision(detections, positives, iou_threshold=iou_threshold)
    return MapResult(_mean_ap(per_action), per_action)


@dataclass(frozen=True, slots=True)
class Tube:
    boxes: Mapping[Hashable, BoxXYXY]  # frame key -> box
    score: float = 1.0


def spatiotemporal_iou(a: Mapping[Hashable, BoxXYXY], b: Mapping[Hashable, BoxXYXY]) -> float:
    """Temporal IoU of the two frame sets x the mean spatial IoU over the frames they share."""
    common = a.keys() & b.keys()
    if not common:
        return 0.0
    temporal = len(common) / len(a.keys() | b.keys())
    return temporal * float(np.mean([box_iou(a[k], b[k]) for k in common]))


def predicted_tubes(predictions: Iterable[ActorBox], action: str) -> list[Tube]:
    """One tube per track that scores `action`, scored by the mean over its frames of actor score x
    action probability. Actors without a track join no tube."""
    boxes: dict[Hashable, dict[Hashable, BoxXYXY]] = defaultdict(dict)
    scores: dict[Hashable, list[float]] = defaultdict(list)
    for p in predictions:
        if p.track is not None and action in p.actions:
            boxes[p.track][p.key] = p.box
            scores[p.track].append(p.score * p.actions[action])
    return [Tube(boxes[t], float(np.mean(scores[t]))) for t in boxes]


def truth_tubes(truths: Iterable[TruthActor], action: str) -> list[Tube]:
    """One tube per annotated actor: the frames where it performs `action`."""
    boxes: dict[Hashable, dict[Hashable, BoxXYXY]] = defaultdict(dict)
    for t in truths:
        if action in t.actions:
            boxes[t.actor_id][t.key] = t.box
    return [Tube(b) for b in boxes.values()]


def tube_ap(predicted: Sequence[Tube], truth: Sequence[Tube], *, threshold: float) -> APResult:
    """AP of predicted tubes matched greedily to truth tubes at spatio-temporal IoU >= threshold.
    Tubes of different videos must have different frame keys (then their overlap is 0)."""
    overlaps = np.array([[spatiotemporal_iou(p.boxes, t.boxes) for t in truth] for p in predicted], float)
    scores = np.array([p.score for p in predicted], float)
    outcomes = match_greedy(overlaps.reshape(len(predicted), len(truth)), scores, np.zeros(len(truth), bool), threshold)
    return ap_from_outcomes(scores, outcomes, len(truth))


def video_map(
    predictions: Sequence[ActorBox],
    truths: Sequence[TruthActor],
    actions: Sequence[str],
    *,
    thresholds: Sequence[float] = (0.2, 0.5),
) -> dict[float, MapResult]:
    """video-mAP at each spatio-temporal IoU threshold: per action, tubes from predicted tracks
    against tubes from annotated actor ids; mean over the actions that have truth tubes."""
    results = {}
    for threshold in thresholds:
        per_action = {
            a: tube_ap(predicted_tubes(predictions, a), truth_tubes(truths, a), threshold=threshold) for a in actions
        }
        results[threshold] = MapResult(_mean_ap(per_action), per_action)
    return results


# --- clip classification ----------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive outscores a random negative,
    ties counting half (the Mann-Whitney U statistic over n_pos x n_neg). None with one class only."""
    positive = np.asarray(labels, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = average_ranks(np.asarray(scores, float))[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float | None:
    """Share of clips classified right, calling a clip positive when its score >= threshold."""
    if len(scores) == 0:
        return None
    return _accuracy(np.asarray(scores, float), np.asarray(labels, bool), threshold)


def _accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == labels))


def best_accuracy(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float] | None:
    """(threshold, accuracy) of the best threshold on these very labels: optimistic by construction,
    an upper bound for what a threshold chosen in advance would reach. Ties: the lowest threshold."""
    if len(scores) == 0:
        return None
    values, positive = np.asarray(scores, float), np.asarray(labels, bool)
    above_all = float(np.nextafter(values.max(), np.inf))  # calls every clip negative
    candidates = [*np.unique(values).tolist(), above_all]
    accuracies = [_accuracy(values, positive, c) for c in candidates]
    best = int(np.argmax(accuracies))
    return candidates[best], accuracies[best]


class ScoredActor(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def actions(self) -> Mapping[str, float]: ...


class ActorFrame(Protocol):
    @property
    def actors(self) -> Sequence[ScoredActor]: ...


CLIP_TOP_FRACTION = 0.25


def frame_action_value(actors: Iterable[ScoredActor], action: str) -> float:
    """How strongly one frame shows `action`: the max over its actors of score x action
    probability; 0 for a frame without actors (or whose actors cannot do `action`)."""
    return max((a.score * a.actions.get(action, 0.0) for a in actors), default=0.0)


def top_fraction_mean(values: Sequence[float], fraction: float = CLIP_TOP_FRACTION) -> float:
    """Mean of the highest ceil(fraction x n) values (at least one); 0 for no values. A fight that
    fills a quarter of a clip scores like one that fills all of it; one noisy frame does not."""
    if len(values) == 0:
        return 0.0
    k = max(1, math.ceil(fraction * len(values)))
    return float(np.mean(np.sort(np.asarray(values, float))[-k:]))


def clip_score(frames: Iterable[ActorFrame], action: str = "fighting", *, fraction: float = CLIP_TOP_FRACTION) -> float:
    """A clip's score for `action`: the mean of the top 25% of its per-frame values
    (`frame_action_value`). The fight-clip evaluation and the trainer both use this one function."""
    return top_fraction_mean([frame_action_value(f.actors, action) for f in frames], fraction)


# --- counting ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountingResult:
    mae: float | None  # None when no truth second had an analysed frame
    rmse: float | None
    mean_signed_error: float | None  # predicted - truth: > 0 over-counts
    n: int  # truth seconds compared
    seconds_without_frames: int  # truth seconds with no analysed frame in their window (left out)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def counting_errors(
    truth: Sequence[tuple[float, int]], frame_counts: Sequence[tuple[float, int]], *, window_s: float = 1.0
) -> CountingResult:
    """Compare counts given at times t with the mean predicted count over the analysed frames whose
    time lies in [t - window/2, t + window/2)."""
    times = np.array([t for t, _ in frame_counts], float)
    counts = np.array([c for _, c in frame_counts], float)
    errors, uncovered = [], 0
    eps = 1e-9  # frame times written with rounding must not slip into the next window
    for t, expected in truth:
        inside = (times >= t - window_s / 2 - eps) & (times < t + window_s / 2 - eps)
        if not inside.any():
            uncovered += 1
            continue
        errors.append(float(counts[inside].mean()) - expected)
    if not errors:
        return CountingResult(None, None, None, 0, uncovered)
    e = np.array(errors)
    return CountingResult(
        mae=float(np.abs(e).mean()),
        rmse=float(np.sqrt((e**2).mean())),
        mean_signed_error=float(e.mean()),
        n=len(errors),
        seconds_without_frames=uncovered,
    )
