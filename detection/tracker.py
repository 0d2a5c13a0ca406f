"""A simple IoU tracker: links per-frame detections into tracks (tubes) by greedy overlap.

A first version; the Kalman + assignment tracker of the model issue replaces it behind the same API.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from detection.types import BoxXYXY, Detection

HISTORY_LEN = 600


def iou(a: BoxXYXY, b: BoxXYXY) -> float:
    ix1, iy1, ix2, iy2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    if inter == 0.0:
        return 0.0
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


@dataclass
class Track:
    id: int
    label: str
    box: BoxXYXY
    score: float
    first_seen: datetime
    last_seen: datetime
    hits: int = 1
    # Recent boxes only: a track that stays for hours must not grow without bound.
    history: deque[tuple[datetime, BoxXYXY]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))

    def update(self, detection: Detection, at: datetime) -> None:
        self.box, self.score, self.last_seen = detection.box, detection.score, at
        self.hits += 1
        self.history.append((at, detection.box))


class IouTracker:
    def __init__(self, *, min_iou: float = 0.2, max_missing_s: float = 2.0, min_hits: int = 2) -> None:
        self.min_iou = min_iou
        self.max_missing_s = max_missing_s  # how long a track survives without a matching detection
        self.min_hits = min_hits  # detections before a track is reported (filters one-frame flickers)
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: list[Detection], at: datetime) -> list[Track]:
        """Match detections to tracks; return the confirmed tracks seen in this frame."""
        # Drop lost tracks before matching: after a stall with no frames, a stale track must not match.
        self.tracks = [t for t in self.tracks if (at - t.last_seen).total_seconds() <= self.max_missing_s]
        unmatched = self._match(detections, at)
        for detection in unmatched:
            self._start(detection, at)
        return [t for t in self.tracks if t.last_seen == at and t.hits >= self.min_hits]

    def _match(self, detections: list[Detection], at: datetime) -> list[Detection]:
        pairs = sorted(
            (
                (iou(track.box, det.box), ti, di)
                for ti, track in enumerate(self.tracks)
                for di, det in enumerate(detections)
                if track.label == det.label
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < self.min_iou:
                break
            if ti in used_tracks or di in used_dets:
                continue
            self.tracks[ti].update(detections[di], at)
            used_tracks.add(ti)
            used_dets.add(di)
        return [d for i, d in enumerate(detections) if i not in used_dets]

    def _start(self, detection: Detection, at: datetime) -> None:
        track = Track(self._next_id, detection.label, detection.box, detection.score, at, at)
        track.history.append((at, detection.box))
        self.tracks.append(track)
        self._next_id += 1
