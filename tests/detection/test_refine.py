"""Second-round labels: a student localizer confirms the teacher's uncertain boxes and keeps the
people the teacher missed out of the background."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from detection.localizer import refine as refine_module
from detection.localizer.pseudo import (
    LabelledBox,
    LabelledFrame,
    VideoLabels,
    add_clip_actions,
    add_kinematic_actions,
    link_tracks,
)
from detection.localizer.refine import refine, refine_all
from tests.detection.localizer_models import write_random_checkpoint

UNSURE = (100.0, 50.0, 140.0, 150.0)
SURE = (300.0, 50.0, 340.0, 150.0)
CAR = (400.0, 100.0, 500.0, 160.0)
MISSED = (200.0, 60.0, 230.0, 140.0)


def video_labels(frames: int = 3, clip_label: str | None = "fight") -> VideoLabels:
    """A person the teacher is sure of, one it is unsure of, and a car, standing still, labelled as
    `label_video` labels them."""
    labels = VideoLabels(
        "clip.mp4",
        640,
        360,
        10.0,
        [
            LabelledFrame(
                i,
                i / 10,
                [
                    LabelledBox(SURE, "person", 0.8),
                    LabelledBox(UNSURE, "person", 0.3, ignore=True),
                    LabelledBox(CAR, "vehicle", 1.0),
                ],
            )
            for i in range(frames)
        ],
        True,
        clip_label,
    )
    link_tracks(labels)
    add_kinematic_actions(labels)
    add_clip_actions(labels)
    return labels


def boxes(labels: VideoLabels, box) -> list[LabelledBox]:
    return [b for f in labels.frames for b in f.boxes if b.box == box]


def test_an_uncertain_box_the_student_also_finds_becomes_an_actor_with_its_actions() -> None:
    labels = video_labels(6)  # 0.5 s: long enough for a speed
    refined, stats = refine(labels, [[(UNSURE, 0.6)]] * 6)
    assert stats.promoted == 6 and stats.ignored == 0
    assert all(not b.ignore for b in boxes(refined, UNSURE))
    assert all(b.actions["fighting"] == 1.0 for b in boxes(refined, UNSURE)), "a fight clip's actor"
    assert all(b.actions["standing"] == 1.0 for b in boxes(refined, UNSURE)), "linked and standing still"
    assert len({b.track for b in boxes(refined, UNSURE)}) == 1
    assert all(b.ignore for b in boxes(labels, UNSURE)), "the teacher's labels are left as they were"


def test_a_weak_or_misplaced_student_box_confirms_nothing() -> None:
    weak = (UNSURE, 0.45)
    shifted = ((120.0, 50.0, 160.0, 150.0), 0.9)  # IoU 1/3 with the unsure box
    refined, stats = refine(video_labels(), [[weak], [shifted], []])
    assert stats.promoted == 0
    assert all(b.ignore for b in boxes(refined, UNSURE))


def test_a_person_only_the_student_finds_becomes_an_ignored_region() -> None:
    refined, stats = refine(video_labels(), [[(MISSED, 0.35)], [(MISSED, 0.25)], [(SURE, 0.9)]])
    assert stats.ignored == 1, "0.25 is too weak; a box on the teacher's own person is not new"
    (added,) = boxes(refined, MISSED)
    assert added.ignore and added.label == "person" and added.actions == {}
    assert added in refined.frames[0].boxes


def test_confident_people_and_vehicles_stay_as_they_were() -> None:
    labels = video_labels(clip_label=None)
    refined, _ = refine(labels, [[(SURE, 0.1), (MISSED, 0.2)]] * 3)
    for before, after in zip(labels.frames, refined.frames, strict=True):
        assert [(b.box, b.label, b.ignore) for b in before.boxes] == [(b.box, b.label, b.ignore) for b in after.boxes]
        assert [b.actions for b in before.boxes] == [b.actions for b in after.boxes]


def test_the_student_must_cover_every_labelled_frame() -> None:
    with pytest.raises(ValueError, match="2 student frames for 3 labelled ones"):
        refine(video_labels(), [[], []])


def _clip(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=20)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
        for index in range(8):
            image = np.full((64, 96, 3), 90, dtype=np.uint8)
            image[10:50, 10 + 4 * index : 30 + 4 * index] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return path


def test_refine_all_runs_the_student_once_and_records_the_round(tmp_path: Path, monkeypatch) -> None:
    student = write_random_checkpoint(tmp_path / "student.pt")
    clip = _clip(tmp_path / "c.mkv")
    labels = VideoLabels(str(clip), 96, 64, 20.0, [LabelledFrame(i, i / 20, []) for i in (0, 2, 4, 6)], True)
    first = refine_all([labels, labels], student, tmp_path / "cache", skip=[False, True])
    assert first.labels[1] is labels, "a skipped video is left as it is"
    assert first.record["checkpoint"] == "student.pt" and first.record["version"] == "random-test"
    assert len(list((tmp_path / "cache").glob("*.pkl"))) == 1

    def no_model(*args, **kwargs):
        raise AssertionError("the student's finds come from the cache")

    monkeypatch.setattr(refine_module.LocalizerBackend, "load", no_model)
    again = refine_all([labels], student, tmp_path / "cache")
    assert [[b.box for b in f.boxes] for f in again.labels[0].frames] == [
        [b.box for b in f.boxes] for f in first.labels[0].frames
    ]
    assert again.record == first.record
