"""Evaluation metrics on tiny cases computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from detection.metrics import (
    FP,
    IGNORED,
    TP,
    ActorBox,
    ScoredBox,
    TruthActor,
    TruthBox,
    accuracy_at,
    average_precision,
    best_accuracy,
    best_f1,
    box_iou,
    clip_score,
    counting_errors,
    envelope_ap,
    frame_map,
    iou_matrix,
    predicted_tubes,
    roc_auc,
    spatiotemporal_iou,
    truth_tubes,
    video_map,
)

A, B, C = (0.0, 0.0, 10.0, 10.0), (20.0, 0.0, 30.0, 10.0), (40.0, 0.0, 50.0, 10.0)


def test_iou_of_overlapping_disjoint_and_empty_boxes() -> None:
    assert box_iou(A, A) == 1.0
    assert box_iou(A, (5.0, 0.0, 15.0, 10.0)) == pytest.approx(50 / 150)
    assert box_iou(A, B) == 0.0
    assert iou_matrix(np.array([(1.0, 1.0, 1.0, 1.0)]), np.array([(1.0, 1.0, 1.0, 1.0)]))[0, 0] == 0.0
    assert iou_matrix(np.zeros((0, 4)), np.array([A])).shape == (0, 1)


def test_ap_on_three_truths_and_five_detections_is_34_over_45() -> None:
    # Three truths A, B, C in one frame. Detections by score:
    #   0.9 on A (IoU 1)        TP   precision 1/1  recall 1/3
    #   0.8 on A again          FP   (A already taken)   1/2       1/3
    #   0.7 near B (IoU 80/120) TP                        2/3       2/3
    #   0.6 far from everyone   FP                        2/4       2/3
    #   0.5 on C (IoU 100/200 = 0.5 exactly, >= 0.5)  TP  3/5      3/3
    # Envelope: 1 up to recall 1/3, max(2/3, 2/4, 3/5) = 2/3 up to 2/3, 3/5 up to 1.
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 15/45 + 10/45 + 9/45 = 34/45.
    truths = [TruthBox("f", A), TruthBox("f", B), TruthBox("f", C)]
    detections = [
        ScoredBox("f", A, 0.9),
        ScoredBox("f", A, 0.8),
        ScoredBox("f", (22.0, 0.0, 32.0, 10.0), 0.7),
        ScoredBox("f", (100.0, 100.0, 110.0, 110.0), 0.6),
        ScoredBox("f", (40.0, 0.0, 50.0, 20.0), 0.5),
    ]
    result = average_precision(detections, truths)
    assert result.ap == pytest.approx(34 / 45, abs=1e-12)
    assert (result.true_positives, result.false_positives, result.n_truth) == (3, 2, 3)


def test_best_f1_over_score_thresholds_by_hand() -> None:
    # Ranked: 0.9 TP, 0.8 FP, 0.7 TP, 0.6 ignored (counts neither way), 0.5 FP; 3 truths. Keeping
    # >= 0.9: P 1, R 1/3, F1 1/2; >= 0.8: 1/2, 1/3 -> 2/5; >= 0.7: 2/3, 2/3 -> 2/3; >= 0.5: 1/2, 2/3 -> 4/7.
    scores = np.array([0.5, 0.9, 0.6, 0.7, 0.8])
    outcomes = np.array([FP, TP, IGNORED, TP, FP])
    best = best_f1(scores, outcomes, n_truth=3)
    assert (best.f1, best.min_score, best.precision, best.recall) == pytest.approx((2 / 3, 0.7, 2 / 3, 2 / 3))
    # Equal scores are kept or dropped together: a TP and an FP at 0.9, one truth -> P 1/2, R 1.
    assert best_f1(np.array([0.9, 0.9]), np.array([TP, FP]), n_truth=1).f1 == pytest.approx(2 / 3)
    assert best_f1(np.array([0.9]), np.array([FP]), n_truth=2).min_score is None  # no TP: nothing worth keeping
    assert best_f1(np.array([]), np.array([]), n_truth=0).f1 == 0.0


def test_ap_just_below_the_iou_threshold_is_a_miss() -> None:
    # As above but the last box overlaps C by 100/210 < 0.5: precision 1, 1/2, 2/3, 2/4, 2/5 at
    # recall 1/3, 1/3, 2/3, 2/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3 = 5/9 (C is never found).
    truths = [TruthBox("f", A), TruthBox("f", B), TruthBox("f", C)]
    detections = [
        ScoredBox("f", A, 0.9),
        ScoredBox("f", A, 0.8),
        ScoredBox("f", (22.0, 0.0, 32.0, 10.0), 0.7),
        ScoredBox("f", (100.0, 100.0, 110.0, 110.0), 0.6),
        ScoredBox("f", (40.0, 0.0, 50.0, 21.0), 0.5),
    ]
    assert average_precision(detections, truths).ap == pytest.approx(5 / 9, abs=1e-12)


def test_matching_goes_by_score_not_by_overlap_and_stays_within_a_frame() -> None:
    # The 0.9 box (IoU 0.6) takes A before the better-placed 0.5 box, which becomes a duplicate: TP, FP -> AP 1.
    # The identical box in frame "g" has no truth there: a third FP, after the TP, so AP stays 1.
    loose = (0.0, 0.0, 10.0, 6.0)
    detections = [ScoredBox("f", A, 0.5), ScoredBox("f", loose, 0.9), ScoredBox("g", A, 0.4)]
    result = average_precision(detections, [TruthBox("f", A)])
    assert result.ap == 1.0
    assert (result.true_positives, result.false_positives) == (1, 2)


def test_detections_on_ignore_truths_count_neither_way() -> None:
    # Truths: R (regular) and I (ignore). Detections: 0.9 on I, 0.8 on I, 0.7 on R.
    # With I ignored: both I detections drop out, R is found by the only counted detection -> AP 1.
    # Were I a regular truth: TP, FP, TP at recall 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    # Were I simply dropped: FP, FP, TP -> AP = 1/3.
    far = (50.0, 50.0, 60.0, 60.0)
    detections = [ScoredBox(0, far, 0.9), ScoredBox(0, far, 0.8), ScoredBox(0, A, 0.7)]
    with_ignore = average_precision(detections, [TruthBox(0, A), TruthBox(0, far, ignore=True)])
    assert with_ignore.ap == 1.0
    assert (with_ignore.n_truth, with_ignore.ignored, with_ignore.false_positives) == (1, 2, 0)
    as_regular = average_precision(detections, [TruthBox(0, A), TruthBox(0, far)])
    assert as_regular.ap == pytest.approx(5 / 6)
    dropped = average_precision(detections, [TruthBox(0, A)])
    assert dropped.ap == pytest.approx(1 / 3)


def test_a_detection_on_both_a_regular_and_an_ignore_truth_takes_the_regular_one() -> None:
    result = average_precision([ScoredBox(0, A, 0.9)], [TruthBox(0, A, ignore=True), TruthBox(0, A)])
    assert (result.true_positives, result.ignored, result.ap) == (1, 0, 1.0)


def test_ap_is_undefined_without_truth_and_zero_without_detections() -> None:
    assert average_precision([ScoredBox(0, A, 0.9)], [TruthBox(0, A, ignore=True)]).ap is None
    assert average_precision([], [TruthBox(0, A)]).ap == 0.0


def test_envelope_ap_fills_the_dips_in_precision() -> None:
    # precision 0.5 at recall 0.5 rises to 2/3 at recall 1: the envelope is 2/3 throughout.
    assert envelope_ap(np.array([0.0, 0.5, 0.5, 1.0]), np.array([0.0, 0.5, 1 / 3, 2 / 3])) == pytest.approx(2 / 3)


def test_frame_map_over_two_actions_with_truth() -> None:
    # Frame 0: P1 at A walks, P2 at B fights. Two predicted actors:
    #   a1 at A, score 1.0: walking 0.9 -> 0.9, fighting 0.2 -> 0.2, running 0.0
    #   a2 at B, score 0.8: walking 0.5 -> 0.4, fighting 0.1 -> 0.08, running 0.0
    # walking:  0.9 TP (P1), 0.4 FP (P2 does not walk)       -> AP 1
    # fighting: 0.2 FP (P1 does not fight), 0.08 TP (P2)     -> precision 1/2 at recall 1 -> AP 1/2
    # running:  no truth -> AP undefined and left out of the mean. mAP = (1 + 1/2) / 2 = 3/4.
    truths = [TruthActor(0, A, frozenset({"walking"}), "p1"), TruthActor(0, B, frozenset({"fighting"}), "p2")]
    predictions = [
        ActorBox(0, A, 1.0, {"walking": 0.9, "fighting": 0.2, "running": 0.0}),
        ActorBox(0, B, 0.8, {"walking": 0.5, "fighting": 0.1, "running": 0.0}),
    ]
    result = frame_map(predictions, truths, ["walking", "fighting", "running"])
    assert result.per_action["walking"].ap == 1.0
    assert result.per_action["fighting"].ap == pytest.approx(0.5)
    assert result.per_action["running"].ap is None
    assert result.mean_ap == pytest.approx(0.75)


def walking(key: int, box: tuple[float, float, float, float], p: float, track: int | None) -> ActorBox:
    return ActorBox(key, box, 1.0, {"walking": p}, track)


def test_video_map_on_two_tubes_with_hand_computed_st_iou() -> None:
    # Truth tubes (walking): person a at A in frames 1-4; person b at (50, 0, 60, 10) in frames 1-2.
    # Track 1 covers frames 3-6: at A in frame 3 (IoU 1), at the top half of A in frame 4 (IoU 0.5).
    #   temporal IoU with a = |{3, 4}| / |{1..6}| = 1/3; mean spatial IoU = (1 + 0.5) / 2 = 3/4
    #   ST-IoU = 1/3 * 3/4 = 1/4; tube score = mean(0.9, 0.7, 0.8, 0.8) = 0.8
    # Track 2 is exactly b's tube (ST-IoU 1), score 0.6.
    # At 0.2 both tracks are hits -> AP 1. At 0.5 track 1 (first by score) misses:
    #   FP then TP -> precision 1/2 at recall 1/2 -> AP = 1/2 * 1/2 = 1/4.
    top_half, b_box = (0.0, 0.0, 10.0, 5.0), (50.0, 0.0, 60.0, 10.0)
    truths = [TruthActor(k, A, frozenset({"walking"}), "a") for k in (1, 2, 3, 4)]
    truths += [TruthActor(k, b_box, frozenset({"walking"}), "b") for k in (1, 2)]
    predictions = [walking(3, A, 0.9, 1), walking(4, top_half, 0.7, 1), walking(5, A, 0.8, 1), walking(6, A, 0.8, 1)]
    predictions += [walking(1, b_box, 0.6, 2), walking(2, b_box, 0.6, 2), walking(2, B, 1.0, None)]

    track_1, track_2 = predicted_tubes(predictions, "walking")
    tube_a, tube_b = truth_tubes(truths, "walking")
    assert spatiotemporal_iou(track_1.boxes, tube_a.boxes) == pytest.approx(0.25)
    assert spatiotemporal_iou(track_2.boxes, tube_b.boxes) == 1.0
    assert (track_1.score, track_2.score) == (pytest.approx(0.8), pytest.approx(0.6))

    results = video_map(predictions, truths, ["walking"], thresholds=(0.2, 0.5))
    assert results[0.2].mean_ap == 1.0
    assert results[0.5].mean_ap == pytest.approx(0.25)


def test_tubes_without_shared_frames_do_not_overlap() -> None:
    assert spatiotemporal_iou({1: A}, {2: A}) == 0.0


def pairwise_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    pairs = [(p, n) for p, n in itertools.product(range(len(scores)), repeat=2) if labels[p] and not labels[n]]
    return sum(1.0 if scores[p] > scores[n] else 0.5 if scores[p] == scores[n] else 0.0 for p, n in pairs) / len(pairs)


SCORES = [0.9, 0.5, 0.3, 0.5, 0.2, 0.1]
LABELS = [True, True, True, False, False, False]


def test_auc_counts_ties_as_half_a_win() -> None:
    # Positives 0.9, 0.5, 0.3 against negatives 0.5, 0.2, 0.1:
    #   0.9 beats all three (3); 0.5 ties 0.5 (0.5) and beats two (2.5); 0.3 beats two (2)
    #   AUC = (3 + 2.5 + 2) / 9 = 7.5 / 9 = 5/6.
    assert roc_auc(SCORES, LABELS) == pytest.approx(5 / 6)
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=40) / 4  # many ties
    labels = rng.random(40) < 0.4
    assert roc_auc(scores.tolist(), labels.tolist()) == pytest.approx(pairwise_auc(scores.tolist(), labels.tolist()))


def test_auc_is_undefined_with_one_class() -> None:
    assert roc_auc([0.2, 0.8], [True, True]) is None


def test_accuracy_at_a_threshold_and_the_optimistic_best_one() -> None:
    # At 0.5: 0.9 P, 0.5 P right; 0.3 P wrong; 0.5 N wrong; 0.2 N, 0.1 N right -> 4/6.
    # At 0.3: only the 0.5 negative is wrong -> 5/6, the best of all thresholds.
    assert accuracy_at(SCORES, LABELS, 0.5) == pytest.approx(4 / 6)
    threshold, accuracy = best_accuracy(SCORES, LABELS) or (None, None)
    assert (threshold, accuracy) == (0.3, pytest.approx(5 / 6))
    # All negatives: the best threshold lies above every score (and is a finite number).
    threshold, accuracy = best_accuracy([0.2, 0.4], [False, False]) or (None, None)
    assert accuracy == 1.0 and threshold is not None and 0.4 < threshold < 0.41


@dataclass
class Actor:
    score: float
    actions: Mapping[str, float]


@dataclass
class OneFrame:
    actors: list[Actor] = field(default_factory=list)


def test_clip_score_is_the_mean_of_the_top_quarter_of_frame_values() -> None:
    # Five frames -> the top ceil(5 / 4) = 2 frame values count.
    #   no actor -> 0; one actor 1.0 x 0.2 = 0.2; max(0.8 x 0.5, 0.9 x 0.1) = 0.4; 0.5 x 0.6 = 0.3;
    #   a vehicle (no "fighting") -> 0.   clip score = (0.4 + 0.3) / 2 = 0.35
    frames = [
        OneFrame(),
        OneFrame([Actor(1.0, {"fighting": 0.2})]),
        OneFrame([Actor(0.8, {"fighting": 0.5}), Actor(0.9, {"fighting": 0.1})]),
        OneFrame([Actor(0.5, {"fighting": 0.6, "walking": 0.4})]),
        OneFrame([Actor(0.99, {"moving": 0.9})]),
    ]
    assert clip_score(frames, "fighting") == pytest.approx(0.35)
    assert clip_score(frames, "walking") == pytest.approx((0.2 + 0.0) / 2)
    assert clip_score([], "fighting") == 0.0


def test_counting_averages_the_frames_in_each_one_second_window() -> None:
    # t=0 covers [-0.5, 0.5): frames at 0.0 and 0.4 count 1 and 1 -> 1 vs truth 2 -> error -1
    # t=1 covers [0.5, 1.5): frames at 0.5 and 0.96 count 3 and 1 -> 2 vs truth 0 -> error +2
    # t=2 has no analysed frame: left out and reported.
    # MAE = 3/2, RMSE = sqrt((1 + 4) / 2), mean signed error = 1/2.
    result = counting_errors([(0.0, 2), (1.0, 0), (2.0, 3)], [(0.0, 1), (0.4, 1), (0.5, 3), (0.96, 1)])
    assert result.mae == pytest.approx(1.5)
    assert result.rmse == pytest.approx(math.sqrt(2.5))
    assert result.mean_signed_error == pytest.approx(0.5)
    assert (result.n, result.seconds_without_frames) == (2, 1)


def test_counting_without_any_covered_second_is_undefined() -> None:
    result = counting_errors([(5.0, 1)], [(0.0, 1)])
    assert (result.mae, result.n, result.seconds_without_frames) == (None, 0, 1)
