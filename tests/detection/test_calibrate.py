"""`python -m detection.calibrate`: the tracker replay on synthetic detections with known answers,
the choice of start score, the written checkpoint, and on real footage the same figure that
`localize --min-score 0.1` + `evaluate detection` give for the checkpoint's own start score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection import calibrate, evaluate
from detection.calibrate import RecordedFrame, Recording, tracked_people
from detection.localize import VideoInfo
from detection.localizer.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from detection.types import Detection
from tests.detection.test_localize_command import run_localize

INFO = VideoInfo(width=640, height=480, fps=10.0, frames=None, duration_s=None)


def person(x: float, score: float) -> Detection:
    return Detection(box=(x, 100.0, x + 40.0, 200.0), score=score)


def recording(*actors: tuple[float, float], frames: int = 10) -> Recording:
    """Steady actors (x, score) standing still in every frame, at 10 frames/s."""
    return Recording(
        Path("synthetic"), INFO, [RecordedFrame(i, i / 10, [person(x, s) for x, s in actors]) for i in range(frames)]
    )


def test_tracks_start_only_from_the_start_score_and_are_reported_from_their_second_frame() -> None:
    steady = recording((100.0, 0.3))
    assert tracked_people(steady, 0.5) == []  # 0.3 < 0.5: it only ever extends tracks, none exists
    boxes = tracked_people(steady, 0.25)
    assert [b.key for b in boxes] == list(range(1, 10))  # confirmed by its second detection
    assert {b.score for b in boxes} == {0.3} and boxes[0].box == (100.0, 100.0, 140.0, 200.0)


def test_the_start_score_with_the_best_f1_is_chosen() -> None:
    # A sure person (0.6), a weak one (0.3) and steady clutter (0.2, no truth on it), 10 frames.
    # Start 0.5: the sure person only: 9 TP of 20 truths, best F1 2 * 0.45 / 1.45, AP 0.45.
    # Start 0.25: both people: 18 TP, no FP: F1 2 * 0.9 / 1.9, AP 0.9.
    # Start 0.15: the clutter too (9 FP, all scored below the people): the same best F1 (counting
    # from 0.3) and AP. On that tie the higher start score is chosen: no track on the clutter.
    truths = [evaluate.TruthBox(i, (x, 100.0, x + 40.0, 200.0)) for i in range(10) for x in (100.0, 250.0)]
    scene = recording((250.0, 0.6), (100.0, 0.3), (400.0, 0.2))
    found = {s: calibrate.candidate(tracked_people(scene, s), truths, s) for s in (0.15, 0.25, 0.5)}
    assert [(c["true_positives"], c["false_positives"]) for c in found.values()] == [(18, 9), (18, 0), (9, 0)]
    assert found[0.5]["best_f1"] == pytest.approx(0.9 / 1.45, abs=1e-4) and found[0.5]["ap"] == pytest.approx(0.45)
    assert found[0.15]["best_f1"] == found[0.25]["best_f1"] == pytest.approx(1.8 / 1.9, abs=1e-4)
    assert found[0.15]["ap"] == found[0.25]["ap"] == pytest.approx(0.9)
    assert found[0.15]["best_f1_from_score"] == 0.3
    assert calibrate.choose(list(found.values()))["start_score"] == 0.25


def test_a_tie_in_f1_goes_to_the_better_ap_then_to_the_higher_start_score() -> None:
    def scored(start: float, f1: float, ap: float | None) -> dict:
        return {"start_score": start, "best_f1": f1, "ap": ap}

    assert (
        calibrate.choose([scored(0.2, 0.8, 0.7), scored(0.3, 0.8, 0.71), scored(0.5, 0.79, 0.9)])["start_score"] == 0.3
    )
    assert calibrate.choose([scored(0.2, 0.0, None), scored(0.4, 0.0, None)])["start_score"] == 0.4


def test_bad_options_are_refused_with_the_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (["v.mp4", "--scores", "0.2,x"], ["v.mp4", "--scores", "0.05"], ["v.mp4", "--max-frames", "0"]):
        with pytest.raises(SystemExit) as exit_:
            calibrate.main(argv)
        assert exit_.value.code == 2
    assert calibrate.main([str(tmp_path / "missing.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_on_real_footage_it_gives_what_localize_and_evaluate_give_and_writes_the_chosen_score(
    real_footage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, out = tmp_path / "teacher.jsonl", tmp_path / "calibrated.pt"
    argv = [str(real_footage), "--max-frames", "24", "--scores", "0.2,0.5", "--teacher-cache", str(cache)]
    assert calibrate.main([*argv, "--write", str(out)], progress=lambda _: None) == 0
    result = json.loads(capsys.readouterr().out)
    by_score = {c["start_score"]: c for c in result["candidates"]}
    assert result["frames"] == 24 and set(by_score) == {0.2, 0.5}
    assert result["chosen_start_score"] == calibrate.choose(result["candidates"])["start_score"]

    # The checkpoint's own start score (0.2) scores exactly as the documented evaluation does.
    _, *records = run_localize(
        real_footage, tmp_path / "v.jsonl", "--max-frames", "24", "--min-score", "0.1", "--quiet"
    )
    localized = evaluate.evaluate_detection(
        evaluate.read_predictions(tmp_path / "v.jsonl"), real_footage, cache=cache, progress=lambda _: None
    )
    assert load_checkpoint(DEFAULT_CHECKPOINT)[0].config.track_start_score == 0.2
    assert by_score[0.2]["ap"] == pytest.approx(localized["ap"], abs=1e-12)
    assert (by_score[0.2]["true_positives"], by_score[0.2]["false_positives"]) == (
        localized["true_positives"],
        localized["false_positives"],
    )
    assert by_score[0.2]["true_positives"] > 0, "the committed model finds people on vtest"

    model, meta = load_checkpoint(out)  # strict: the copy loads, with the chosen score and this run
    assert model.config.track_start_score == result["chosen_start_score"]
    assert meta["record"]["track_start_score_calibration"]["candidates"] == result["candidates"]
    assert meta["version"] == load_checkpoint(DEFAULT_CHECKPOINT)[1]["version"]
