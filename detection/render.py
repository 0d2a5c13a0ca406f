"""Pictures for people: snapshots and incident posters with the actor boxes drawn on them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from detection.types import BoxXYXY

_HIGHLIGHT = (40, 40, 230)  # BGR red-ish: boxes that fired a rule
_PLAIN = (90, 220, 90)


def draw_boxes(image: np.ndarray, boxes: Sequence[tuple[BoxXYXY, str]], *, highlight: bool = False) -> np.ndarray:
    """A copy of the image with labelled boxes drawn on it."""
    out = image.copy()
    colour = _HIGHLIGHT if highlight else _PLAIN
    for (x1, y1, x2, y2), label in boxes:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, colour, 2)
        cv2.putText(out, label, (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, *, quality: int = 80, max_width: int = 960) -> bytes:
    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, (max_width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` in one step, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
