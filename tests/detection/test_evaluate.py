"""The evaluation readers and `python -m detection.evaluate` end to end, on small synthetic files,
a synthetic video with a fake teacher, and the real SSDLite teacher on a few frames of vtest.avi."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from detection.evaluate import (
    InputError,
    evaluate_clips,
    main,
    read_ava_csv,
    read_clip_labels,
    read_people_counts,
    read_predictions,
)
from detection.types import ACTIONS, Detection
from tests.conftest import REPO, real_footage_path, require_or_skip

SHARED_DATA = REPO.parent / "shared" / "data"


def actor(box: list[float], score: float = 0.9, track: int | None = 1, **actions: float) -> dict[str, Any]:
    return {"track": track, "box": box, "class": "person", "score": score, "actions": actions}


def write_jsonl(path: Path, records: list[dict[str, Any]], header: dict[str, Any] | None = None) -> Path:
    lines = ([header] if header else []) + records
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def evaluate(capsys: pytest.CaptureFixture[str], *argv: str, **kwargs: Any) -> dict[str, Any]:
    assert main(list(argv), **kwargs) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def failure(capsys: pytest.CaptureFixture[str], *argv: str, **kwargs: Any) -> str:
    assert main(list(argv), **kwargs) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# --- readers -------------------------------------------------------------------------------------


def test_predictions_with_a_header_line(tmp_path: Path) -> None:
    header = {"video": "x.mp4", "width": 640, "height": 480, "fps": 25, "model": "m"}
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"frame": 0, "time": 0.0, "actors": [actor([1, 2, 3, 4], walking=0.8)]},
            {"frame": 5, "time": 0.2, "actors": []},
        ],
        header,
    )
    predictions = read_predictions(path)
    assert predictions.header == header
    assert predictions.frame_size() == (640, 480)
    assert [(f.frame, f.time, len(f.actors)) for f in predictions.frames] == [(0, 0.0, 1), (5, 0.2, 0)]
    first = predictions.frames[0].actors[0]
    assert (first.track, first.box, first.label, first.score, first.actions) == (
        1,
        (1.0, 2.0, 3.0, 4.0),
        "person",
        0.9,
        {"walking": 0.8},
    )


def test_predictions_without_a_header(tmp_path: Path) -> None:
    predictions = read_predictions(write_jsonl(tmp_path / "p.jsonl", [{"frame": 3, "time": 0.1, "actors": []}]))
    assert predictions.header is None and predictions.frame_size() is None and len(predictions.frames) == 1


@pytest.mark.parametrize(
    ("third_line", "complaint"),
    [
        ('{"frame": 2, "time": 0.2, "actors": [', "not valid JSON"),
        ('{"frame": 2, "time": NaN, "actors": []}', "not valid JSON"),
        ('{"video": "late header"}', "only the first line may be a header"),
        ('{"frame": 1, "time": 0.1, "actors": []}', "frame 1 again (first on line 2)"),
        ('{"frame": -1, "time": 0.1, "actors": []}', '"frame" must be an integer >= 0'),
        ('{"frame": 2, "time": 0.1, "actors": [{"box": [0, 0, 1], "class": "person", "score": 1, "actions": {}}]}',
         '"box" must be [x1, y1, x2, y2]'),
        ('{"frame": 2, "time": 0.1, "actors": [{"box": [0, 0, 1, 1], "class": "person", "score": 1.5, "actions": {}}]}',
         '"score" must be a number in [0, 1]'),
    ],
)  # fmt: skip
def test_a_malformed_predictions_line_is_reported_with_its_number(
    tmp_path: Path, third_line: str, complaint: str
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"video": "v.mp4"}\n{"frame": 1, "time": 0.1, "actors": []}\n' + third_line + "\n")
    with pytest.raises(InputError) as error:
        read_predictions(path)
    assert f"{path}, line 3" in str(error.value)
    assert complaint in str(error.value)


def test_ava_rows_become_actors_with_pixel_boxes_and_action_sets(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text(
        "video_id,timestamp_s,x1,y1,x2,y2,action,person_id\n"
        "cam1,1.0,0.25,0.5,0.5,1.0,walking,7\n"
        f"cam1,1.0,0.25,0.5,0.5,1.0,{ACTIONS.index('fighting')},7\n"
        "cam1,2.0,0.0,0.0,0.1,0.1,standing,8\n"
        "cam2,1.0,0.0,0.0,0.1,0.1,standing,1\n"
    )
    truth = read_ava_csv(path, size=(200, 100), video_id="cam1")
    assert truth.keyframes == [1000, 2000]
    by_person = {(a.actor_id, a.key): a for a in truth.actors}
    assert set(by_person) == {("7", 1000), ("8", 2000)}
    assert by_person["7", 1000].box == (50.0, 50.0, 100.0, 100.0)
    assert by_person["7", 1000].actions == {"walking", "fighting"}
    assert by_person["8", 2000].box == pytest.approx((0.0, 0.0, 20.0, 10.0))


def test_ava_csv_needs_no_header_but_a_video_choice_when_it_holds_several(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("cam1,1.0,0.1,0.1,0.2,0.2,walking,1\n")
    assert read_ava_csv(path, size=(10, 10)).video_id == "cam1"
    path.write_text("cam1,1.0,0.1,0.1,0.2,0.2,walking,1\ncam2,1.0,0.1,0.1,0.2,0.2,walking,1\n")
    with pytest.raises(InputError, match="--video-id"):
        read_ava_csv(path, size=(10, 10))


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("cam1,1.0,10,20,30,40,walking,1", "must be normalised"),
        ("cam1,1.0,0.1,0.1,0.2,0.2,dancing,1", "unknown action 'dancing'"),
        (f"cam1,1.0,0.1,0.1,0.2,0.2,{len(ACTIONS)},1", "out of range"),
        ("cam1,1.0,0.1,0.1,0.2,0.2,walking", "expected 8 columns"),
        ("cam1,1.0,0.1,0.1,0.3,0.3,running,1", "another box at this timestamp on line 2"),
    ],
)
def test_a_bad_ava_row_is_reported_with_its_line(tmp_path: Path, row: str, complaint: str) -> None:
    path = tmp_path / "gt.csv"
    path.write_text(f"video_id,timestamp_s,x1,y1,x2,y2,action,person_id\ncam1,1.0,0.1,0.1,0.2,0.2,walking,1\n{row}\n")
    with pytest.raises(InputError, match="line 3") as error:
        read_ava_csv(path, size=(100, 100))
    assert complaint in str(error.value)


def test_clip_labels_and_people_counts_in_the_shared_data_formats(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label,width,height,fps,nb_frames,duration_s\n"
        "fight/fi001.mp4,fight,480,360,25/1,53,2.12\nnoFight/nofi001.mp4,no_fight,480,360,25/1,50,2.0\n"
    )
    assert read_clip_labels(labels) == {"fi001": True, "nofi001": False}
    counts = tmp_path / "people.csv"
    counts.write_text("video_time_s,people_in_frame\n0.00,1\n1.00,2\n")
    assert read_people_counts(counts) == [(0.0, 1), (1.0, 2)]
    counts.write_text("video_time_s,people_in_frame\n0.00,1\n1.00,two\n")
    with pytest.raises(InputError, match="line 3"):
        read_people_counts(counts)


def test_the_readers_accept_the_real_fight_and_caviar_labels() -> None:
    labels, people = SHARED_DATA / "fight" / "labels.csv", SHARED_DATA / "caviar" / "OneStopEnter1front_gt_people.csv"
    if not (labels.is_file() and people.is_file()):
        require_or_skip(f"shared labels not found under {SHARED_DATA}")
    clips = read_clip_labels(labels)
    assert (len(clips), sum(clips.values())) == (200, 100)
    counts = read_people_counts(people)
    assert counts[0] == (0.0, 1) and len(counts) > 50


# --- counting, clips and ava end to end ----------------------------------------------------------


def test_counting_cli_reports_errors_per_second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # t=0: frames 0.0 and 0.48 see 1 and 2 people scored >= 0.5 -> 1.5 vs 1 (+0.5); the 0.3 actor is not counted.
    # t=1: the frame at 1.0 sees 2 -> 2 vs 3 (-1). MAE 0.75, mean signed error -0.25.
    people = [actor([0, 0, 5, 5]), actor([5, 5, 9, 9], score=0.7), actor([1, 1, 2, 2], score=0.3)]
    pred = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"frame": 0, "time": 0.0, "actors": people[:1]},
            {"frame": 12, "time": 0.48, "actors": people},
            {"frame": 25, "time": 1.0, "actors": people},
        ],
        {"video": "c.mp4", "width": 384, "height": 288, "fps": 25, "model": "m"},
    )
    gt = tmp_path / "gt.csv"
    gt.write_text("video_time_s,people_in_frame\n0.00,1\n1.00,3\n2.00,1\n")
    result = evaluate(capsys, "counting", "--pred", str(pred), "--gt", str(gt))
    assert result["mae"] == pytest.approx(0.75)
    assert result["mean_signed_error"] == pytest.approx(-0.25)
    assert (result["n"], result["seconds_without_frames"], result["frames"]) == (2, 1, 3)


def test_clips_cli_reports_auc_accuracy_and_missing_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One frame per clip, one actor of score 1.0: the clip score is its fighting probability.
    # fights 0.9, 0.4; no fights 0.4, 0.1 -> AUC = (1 + 1 + 0.5 + 1) / 4 = 0.875.
    # At 0.5: 0.9 right, 0.4 fight wrong, 0.4 and 0.1 right -> 3/4. No threshold does better:
    # at 0.4 the no-fight 0.4 is wrong instead, at 0.1 both no fights, above 0.9 both fights.
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label,width,height,fps,nb_frames,duration_s\n"
        + "".join(f"{d}/{s}.mp4,{lab},480,360,25/1,50,2.0\n" for d, s, lab in [
            ("fight", "fi001", "fight"), ("fight", "fi002", "fight"), ("fight", "fi003", "fight"),
            ("noFight", "nofi001", "no_fight"), ("noFight", "nofi002", "no_fight"),
        ])
    )  # fmt: skip
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for stem, p in {"fi001": 0.9, "fi002": 0.4, "nofi001": 0.4, "nofi002": 0.1, "extra": 0.5}.items():
        write_jsonl(
            pred_dir / f"{stem}.jsonl", [{"frame": 0, "time": 0.0, "actors": [actor([0, 0, 1, 1], 1.0, fighting=p)]}]
        )
    result = evaluate(capsys, "clips", "--pred-dir", str(pred_dir), "--labels", str(labels))
    assert result["auc"] == pytest.approx(0.875)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["optimistic_best_threshold"]["accuracy"] == pytest.approx(0.75)
    assert (result["n"], result["positives"], result["negatives"]) == (4, 2, 2)
    assert result["missing_clips"] == ["fi003"]
    assert result["unlabelled_predictions"] == ["extra"]


def test_clips_cli_scores_clips_by_their_scene_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Four frames per clip, no actors: the clip score is the top quarter (1 frame) of the scene values.
    # fi001 max 0.8, fi002 0.3; nofi001 0.6, nofi002 0.2 -> AUC = (1 + 1 + 0 + 1) / 4 = 0.75;
    # at 0.5, fi002 and nofi001 are wrong: accuracy 0.5.
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label\n" + "".join(f"x/{s}.mp4,{lab}\n" for s, lab in [
            ("fi001", "fight"), ("fi002", "fight"), ("nofi001", "noFight"), ("nofi002", "noFight"),
        ])
    )  # fmt: skip
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for stem, top in {"fi001": 0.8, "fi002": 0.3, "nofi001": 0.6, "nofi002": 0.2}.items():
        frames = [
            {"frame": i, "time": i / 10, "actors": [], "scene": {"fighting": top * (i + 1) / 4}} for i in range(4)
        ]
        write_jsonl(pred_dir / f"{stem}.jsonl", frames)
    result = evaluate(capsys, "clips", "--pred-dir", str(pred_dir), "--labels", str(labels), "--score", "scene")
    assert (result["score"], result["auc"], result["accuracy"]) == ("scene", pytest.approx(0.75), pytest.approx(0.5))
    # The same files scored by their actors: no actor anywhere, every clip 0.
    assert evaluate(capsys, "clips", "--pred-dir", str(pred_dir), "--labels", str(labels))["auc"] == 0.5


def test_clips_by_scene_score_refuse_files_without_one(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nx/fi001.mp4,fight\nx/nofi001.mp4,noFight\n")
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for stem in ("fi001", "nofi001"):
        write_jsonl(pred_dir / f"{stem}.jsonl", [{"frame": 0, "time": 0.0, "actors": []}])
    with pytest.raises(InputError, match='no scene "fighting" score'):
        evaluate_clips(pred_dir, labels, score="scene")


def test_a_scene_score_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"frame": 0, "time": 0.0, "actors": [], "scene": {"fighting": 1.5}}])
    with pytest.raises(InputError, match='"scene" must map'):
        read_predictions(path)


def test_ava_cli_reports_frame_and_video_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 100x100 video, keyframes at 1 s and 2 s. Person 1 walks at (10, 10, 30, 50) in both.
    # Predictions every 0.5 s; track 4 sits on person 1 at 1.0 and 2.0 (walking 0.8) -> frame AP 1 and
    # one tube over both keyframes with ST-IoU 1 -> video AP 1 at 0.2 and 0.5. The frame at 2.5 s is
    # no keyframe and is not judged; the keyframe at 3 s has no analysed frame within 0.25 s.
    gt = tmp_path / "gt.csv"
    gt.write_text("v,1,0.1,0.1,0.3,0.5,walking,1\nv,2,0.1,0.1,0.3,0.5,walking,1\nv,3,0.5,0.5,0.6,0.6,fighting,2\n")
    on_person = actor([10, 10, 30, 50], 1.0, 4, walking=0.8, fighting=0.1)
    elsewhere = actor([60, 60, 90, 90], 1.0, 5, walking=0.9, fighting=0.9)
    frames = [{"frame": 2 * i, "time": i / 2, "actors": [on_person] if i in (2, 4) else []} for i in range(5)]
    frames.append({"frame": 10, "time": 2.5, "actors": [elsewhere]})
    pred = write_jsonl(tmp_path / "p.jsonl", frames, {"video": "v.mp4", "width": 100, "height": 100, "fps": 4})
    result = evaluate(capsys, "ava", "--pred", str(pred), "--gt", str(gt))
    assert (result["video_id"], result["keyframes"], result["keyframes_without_prediction"]) == ("v", 3, 1)
    per_action = result["frame_map"]["per_action"]
    assert per_action["walking"]["ap"] == 1.0 and per_action["walking"]["false_positives"] == 0
    assert per_action["fighting"]["ap"] == 0.0 and per_action["fighting"]["n_truth"] == 1
    assert per_action["running"]["ap"] is None
    assert result["frame_map"]["map"] == pytest.approx(0.5)
    assert result["video_map"]["0.5"]["per_action"]["walking"]["ap"] == 1.0
    assert result["video_map"]["0.2"]["map"] == pytest.approx(0.5)


def test_ava_cli_needs_a_frame_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.csv"
    gt.write_text("v,1,0.1,0.1,0.3,0.5,walking,1\n")
    pred = write_jsonl(
        tmp_path / "p.jsonl", [{"frame": 0, "time": 1.0, "actors": [actor([10, 10, 30, 50], walking=1)]}]
    )
    assert "--size WIDTHxHEIGHT" in failure(capsys, "ava", "--pred", str(pred), "--gt", str(gt))
    result = evaluate(capsys, "ava", "--pred", str(pred), "--gt", str(gt), "--size", "100x100")
    assert result["frame_map"]["map"] == 1.0  # the box lands on the person only at 100x100


def test_counting_refuses_a_file_written_from_higher_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.csv"
    gt.write_text("video_time_s,people_in_frame\n0.00,1\n")
    records = [{"frame": 0, "time": 0.0, "actors": [actor([0, 0, 5, 5], score=0.6)]}]
    pred = write_jsonl(tmp_path / "p.jsonl", records, {"video": "c.mp4", "min_score": 0.3})
    err = failure(capsys, "counting", "--pred", str(pred), "--gt", str(gt), "--min-score", "0.1")
    assert "holds actors scored 0.3 or more only: it cannot be counted from 0.1" in err
    assert evaluate(capsys, "counting", "--pred", str(pred), "--gt", str(gt), "--min-score", "0.3")["mae"] == 0.0


def test_bad_input_exits_2_with_the_reason_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.csv"
    gt.write_text("video_time_s,people_in_frame\n0.00,1\n")
    err = failure(capsys, "counting", "--pred", str(tmp_path / "absent.jsonl"), "--gt", str(gt))
    assert err == f"error: no such file: {tmp_path / 'absent.jsonl'}\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"frame": 0, "time": 0, "actors": []}\n{"frame": 1, "time": 0.1, "actors": [}\n')
    assert f"{bad}, line 2: not valid JSON" in failure(capsys, "counting", "--pred", str(bad), "--gt", str(gt))


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2]\n")
    gt = tmp_path / "gt.csv"
    gt.write_text("video_time_s,people_in_frame\n0.00,1\n")
    command = [sys.executable, "-m", "detection.evaluate", "counting", "--pred", str(bad), "--gt", str(gt)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{bad}, line 1: expected a JSON object" in done.stderr


# --- detection AP against a teacher --------------------------------------------------------------

WIDTH, HEIGHT, FRAMES = 64, 48, 12
UNSURE_BOX = (0.0, 30.0, 20.0, 46.0)


def sure_box(index: int) -> tuple[float, float, float, float]:
    """The fake teacher's confident person moves 5 px a frame: a wrong frame index misses it."""
    return 5.0 * index, 5.0, 5.0 * index + 10.0, 25.0


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lossless FFV1 clip whose frame i is uniformly grey level 10 * i."""
    path = tmp_path_factory.mktemp("video") / "counter.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for index in range(FRAMES):
            image = np.full((HEIGHT, WIDTH, 3), 10 * index, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return path


class FakeTeacher:
    """Reads the frame index from the grey level; sees one sure person (0.9) and one unsure (0.45)."""

    name = "fake"

    def __init__(self, floor: float) -> None:
        self.floor = floor
        self.frames_seen: list[int] = []

    def detect(self, image: np.ndarray) -> list[Detection]:
        index = int(image[0, 0, 0]) // 10
        self.frames_seen.append(index)
        found = [Detection(sure_box(index), 0.9), Detection(UNSURE_BOX, 0.45)]
        return [d for d in found if d.score >= self.floor]


class FakeTeachers:
    def __init__(self) -> None:
        self.built: list[FakeTeacher] = []

    def __call__(self, floor: float) -> FakeTeacher:
        self.built.append(FakeTeacher(floor))
        return self.built[-1]

    def frames_seen(self) -> list[int]:
        return [i for t in self.built for i in t.frames_seen]


def detection_predictions(path: Path, frames: list[int], header: dict[str, Any] | None = None) -> Path:
    # Per frame: the sure person (0.8), the unsure one (0.82); frame 2 also a false box (0.85).
    records = []
    for index in frames:
        actors = [actor(list(sure_box(index)), 0.8), actor(list(UNSURE_BOX), 0.82)]
        if index == 2:
            actors.append(actor([40, 30, 60, 45], 0.85))
        records.append({"frame": index, "time": index / 10, "actors": actors})
    return write_jsonl(path, records, header)


def test_detection_ap_against_the_teacher_on_the_analysed_frames(
    tmp_path: Path, counter_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sorted: 0.85 FP, 0.82 x3 on the unsure box, 0.8 x3 TP. With the unsure box 'ignore', the 0.82s
    # drop out: precision 1/2, 2/3, 3/4 at recall 1/3, 2/3, 1 -> envelope 3/4 -> AP 3/4. Without it,
    # they are FPs: precision 1/5, 2/6, 3/7 -> AP 3/7.
    pred = detection_predictions(tmp_path / "p.jsonl", [2, 5, 9], {"video": "c", "width": WIDTH, "height": HEIGHT})
    teachers = FakeTeachers()
    argv = ["detection", "--pred", str(pred), "--video", str(counter_video)]
    result = evaluate(capsys, *argv, make_teacher=teachers)
    assert sorted(teachers.frames_seen()) == [2, 5, 9]
    assert teachers.built[0].floor == 0.3
    assert result["ap"] == pytest.approx(3 / 4)
    assert (result["true_positives"], result["false_positives"], result["ignored"]) == (3, 1, 3)
    assert (result["teacher"]["boxes"], result["teacher"]["ignore_boxes"], result["frames"]) == (3, 3, 3)
    assert evaluate(capsys, *argv, "--no-ignore", make_teacher=teachers)["ap"] == pytest.approx(3 / 7)


def test_the_teacher_cache_makes_a_second_run_skip_the_teacher(
    tmp_path: Path, counter_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "teacher.jsonl"
    teachers = FakeTeachers()
    pred = detection_predictions(tmp_path / "p.jsonl", [1, 3])
    argv = ["detection", "--pred", str(pred), "--video", str(counter_video), "--teacher-cache", str(cache)]
    first = evaluate(capsys, *argv, make_teacher=teachers)
    assert sorted(teachers.frames_seen()) == [1, 3]
    assert evaluate(capsys, *argv, make_teacher=teachers) == first
    assert sorted(teachers.frames_seen()) == [1, 3]  # nothing new decoded or detected
    more = detection_predictions(tmp_path / "more.jsonl", [1, 3, 4])
    evaluate(capsys, "detection", "--pred", str(more), "--video", str(counter_video), "--teacher-cache", str(cache),
             make_teacher=teachers)  # fmt: skip
    assert sorted(teachers.frames_seen()) == [1, 3, 4]  # only the new frame
    evaluate(capsys, *argv, "--teacher-min-score", "0.7", make_teacher=teachers)
    assert sorted(teachers.frames_seen()) == [1, 3, 4]  # the same boxes serve another confident score
    evaluate(capsys, *argv, "--teacher-ignore-min-score", "0.4", make_teacher=teachers)
    assert sorted(teachers.frames_seen()) == [1, 1, 3, 3, 4]  # another score floor: recomputed


def test_detection_refuses_frames_the_video_lacks_and_a_wrong_frame_size(
    tmp_path: Path, counter_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beyond = detection_predictions(tmp_path / "p.jsonl", [3, 40])
    err = failure(
        capsys, "detection", "--pred", str(beyond), "--video", str(counter_video), make_teacher=FakeTeachers()
    )
    assert "frames 40 that" in err
    sized = detection_predictions(tmp_path / "s.jsonl", [3], {"video": "c", "width": 640, "height": 480})
    err = failure(capsys, "detection", "--pred", str(sized), "--video", str(counter_video), make_teacher=FakeTeachers())
    assert "declares 640x480 frames" in err and f"{WIDTH}x{HEIGHT}" in err


def test_detection_ap_with_the_real_ssdlite_teacher_on_vtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Predictions copied from SSDLite's own confident boxes score AP 1; the same boxes moved to
    other frames (100 frames = 10 s apart) score far lower, so the teacher saw the named frames."""
    video = real_footage_path()
    if video is None:
        require_or_skip("no real footage: run `make footage` or provide ../shared/data/vtest.avi")
    assert video is not None
    from detection.detectors import SsdlitePersonDetector

    detector, wanted = SsdlitePersonDetector(score_threshold=0.6), [0, 100, 200]
    images = {}
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                images[index] = frame.to_ndarray(format="bgr24")
            if index == wanted[-1]:
                break
    boxes = {i: [actor(list(d.box), d.score) for d in detector.detect(images[i])] for i in wanted}
    assert all(len(b) >= 2 for b in boxes.values()), {i: len(b) for i, b in boxes.items()}
    cache = tmp_path / "teacher.jsonl"

    def run(frames: dict[int, list[dict[str, Any]]], name: str) -> dict[str, Any]:
        pred = write_jsonl(tmp_path / name, [{"frame": i, "time": i / 10, "actors": a} for i, a in frames.items()])
        return evaluate(capsys, "detection", "--pred", str(pred), "--video", str(video), "--teacher-cache", str(cache))

    right = run(boxes, "right.jsonl")
    assert right["ap"] == pytest.approx(1.0)
    assert right["teacher"]["boxes"] == sum(len(b) for b in boxes.values())
    shifted = run({0: boxes[100], 100: boxes[200], 200: boxes[0]}, "shifted.jsonl")
    assert shifted["ap"] < 0.5
