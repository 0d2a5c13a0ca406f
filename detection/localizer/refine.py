"""Second-round labels: a localizer trained on the teacher's labels checks them (self-training).

The SSDLite teacher is unsure (0.15-0.5) about most people of the fight clips and misses others
altogether; trained on its labels alone, the localizer learns to take people like them for
background. A localizer trained on those labels, and never on the evaluation footage, looks at
every labelled frame again:
- a teacher's uncertain box that it also finds (IoU >= AGREE_IOU, score >= AGREE_SCORE) becomes an
  actor: two detectors agree;
- a person it finds (score >= IGNORE_SCORE) where the teacher has no box at all becomes an ignored
  region: neither actor nor background, since one detector alone is not trusted with a label.
The teacher's confident boxes and the vehicles stay as they are; track links and the kinematic and
clip actions are then made again over the new boxes, as for the teacher's labels.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detection.localizer.backend import LocalizerBackend
from detection.localizer.checkpoint import load_checkpoint
from detection.localizer.data import progress
from detection.localizer.pseudo import (
    LABEL_FPS,
    LabelledBox,
    VideoLabels,
    add_clip_actions,
    add_kinematic_actions,
    iou,
    link_tracks,
    read_frames,
    video_fps,
)

log = logging.getLogger(__name__)

AGREE_IOU = 0.5
AGREE_SCORE = 0.5
IGNORE_SCORE = 0.3
NEW_BOX_MAX_IOU = 0.3  # a student box overlapping a teacher box more than this is that box, not a new one

Box = tuple[float, float, float, float]
FramePersons = list[tuple[Box, float]]  # the student's persons on one labelled frame, with scores


@dataclass
class RefineStats:
    promoted: int = 0  # teacher's uncertain boxes made actors
    ignored: int = 0  # new ignored regions where the teacher saw nobody

    def add(self, other: RefineStats) -> None:
        self.promoted += other.promoted
        self.ignored += other.ignored


def refine(labels: VideoLabels, persons: Sequence[FramePersons]) -> tuple[VideoLabels, RefineStats]:
    """A copy of `labels` with the student's persons (one list per labelled frame) applied."""
    if len(persons) != len(labels.frames):
        raise ValueError(f"{labels.path}: {len(persons)} student frames for {len(labels.frames)} labelled ones")
    out = copy.deepcopy(labels)
    stats = RefineStats()
    for frame, found in zip(out.frames, persons, strict=True):
        teacher = [b for b in frame.boxes if b.label == "person"]
        for box in teacher:
            if box.ignore and any(s >= AGREE_SCORE and iou(box.box, b) >= AGREE_IOU for b, s in found):
                box.ignore = False
                stats.promoted += 1
        for b, s in found:
            if s >= IGNORE_SCORE and all(iou(b, t.box) <= NEW_BOX_MAX_IOU for t in teacher):
                frame.boxes.append(LabelledBox(b, "person", s, ignore=True))
                stats.ignored += 1
    for frame in out.frames:  # links and actions are made again over the new boxes
        for box in frame.boxes:
            box.track, box.actions = -1, {}
    link_tracks(out)
    add_kinematic_actions(out)
    add_clip_actions(out)
    return out, stats


def student_persons(backend: LocalizerBackend, labels: VideoLabels) -> list[FramePersons]:
    """The student's persons on each labelled frame, analysed in order as a camera stream."""
    path = Path(labels.path)
    step = max(1, round(video_fps(path) / LABEL_FPS))
    wanted = {f.index for f in labels.frames}
    stream = backend.stream()
    found: dict[int, FramePersons] = {}
    for index, _, image in read_frames(path, step):
        if index in wanted:
            found[index] = [(d.box, d.score) for d in stream.detect(image) if d.label == "person"]
    return [found.get(f.index, []) for f in labels.frames]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Refined:
    labels: list[VideoLabels]
    record: dict[str, object]  # what the checkpoint's training record says about this round


def refine_all(labels: Sequence[VideoLabels], student: Path, cache_dir: Path, *, skip: Sequence[bool] = ()) -> Refined:
    """Every video's labels refined by the student checkpoint; the student's finds are cached per
    video and student. `skip[i]`: leave video i as it is (user-labelled clips need no teacher check)."""
    _, meta = load_checkpoint(student)  # a bad file fails here, before any work
    digest = file_sha256(student)
    cache_dir.mkdir(parents=True, exist_ok=True)
    backend: LocalizerBackend | None = None
    out: list[VideoLabels] = []
    total = RefineStats()
    for i, video in enumerate(labels):
        if i < len(skip) and skip[i]:
            out.append(video)
            progress(i + 1, len(labels), "refining labels")
            continue
        key = hashlib.sha1(f"{digest}:{video.path}:{len(video.frames)}".encode(), usedforsecurity=False)
        cached = cache_dir / f"{Path(video.path).stem}-{key.hexdigest()[:16]}.pkl"
        if cached.is_file():
            persons = pickle.loads(cached.read_bytes())  # noqa: S301  (our own cache)
        else:
            backend = backend or LocalizerBackend.load(student, device="cpu")
            persons = student_persons(backend, video)
            cached.write_bytes(pickle.dumps(persons))
        refined, stats = refine(video, persons)
        total.add(stats)
        out.append(refined)
        progress(i + 1, len(labels), "refining labels")
    log.info("student %s: %d uncertain boxes made actors, %d new ignored regions", student.name, *vars(total).values())
    record = {
        "checkpoint": student.name,
        "sha256": digest,
        "version": meta.get("version"),
        "promoted": total.promoted,
        "ignored": total.ignored,
        "rules": {"agree_iou": AGREE_IOU, "agree_score": AGREE_SCORE, "ignore_score": IGNORE_SCORE},
    }
    return Refined(out, record)
