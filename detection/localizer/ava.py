"""User-labelled clips for training, in the AVA-style CSV that `detection.evaluate` also reads:
`video_id,timestamp_s,x1,y1,x2,y2,action,person_id`, boxes normalised to [0, 1], one row per person,
timestamp and action (see docs/evaluation.md). As in AVA, the listing is exhaustive: an action of
the person class that a person's rows do not list is taken as not happening."""

from __future__ import annotations

import csv
from pathlib import Path

from detection.evaluate import read_ava_csv
from detection.localizer.pseudo import LabelledBox, LabelledFrame, VideoLabels, read_frames, video_fps
from detection.types import PERSON_ACTIONS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def video_ids(csv_path: Path) -> list[str]:
    with csv_path.open(newline="") as f:
        ids = {row[0] for row in csv.reader(f) if row and row[0] != "video_id"}
    return sorted(ids)


def find_video(videos: Path, video_id: str) -> Path:
    for suffix in VIDEO_SUFFIXES:
        path = videos / f"{video_id}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no video for {video_id!r} in {videos} (looked for {', '.join(VIDEO_SUFFIXES)})")


def labels_from_ava(csv_path: Path, video: Path, video_id: str) -> VideoLabels:
    """The annotated timestamps of one video as labelled frames (the nearest decoded frame each)."""
    frames = [(index, seconds) for index, seconds, _ in read_frames(video)]
    if not frames:
        raise ValueError(f"{video}: no frames")
    width, height = _frame_size(video)
    truth = read_ava_csv(csv_path, size=(width, height), video_id=video_id)
    people = {actor_id: n for n, actor_id in enumerate(sorted({str(a.actor_id) for a in truth.actors}))}
    by_key: dict[int, list[LabelledBox]] = {}
    for actor in truth.actors:
        actions = {name: float(name in actor.actions) for name in PERSON_ACTIONS}
        box = LabelledBox(actor.box, "person", 1.0, track=people[str(actor.actor_id)], actions=actions)
        by_key.setdefault(int(actor.key), []).append(box)  # type: ignore[call-overload]
    labelled = []
    for key in sorted(by_key):
        index, seconds = min(frames, key=lambda f: abs(f[1] * 1000 - key))
        labelled.append(LabelledFrame(index, seconds, by_key[key]))
    return VideoLabels(str(video), width, height, video_fps(video), labelled, False, None)


def _frame_size(video: Path) -> tuple[int, int]:
    for _, _, image in read_frames(video):
        return image.shape[1], image.shape[0]
    raise ValueError(f"{video}: no frames")
