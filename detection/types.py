"""Plain data passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

# (x1, y1, x2, y2) in pixels of the analysed frame.
BoxXYXY = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # count of analysis frames handed out by the source so far (0, 1, 2, ...)
    time: datetime  # wall-clock UTC time the frame stands for
    image: np.ndarray  # (H, W, 3) uint8, BGR


@dataclass(frozen=True, slots=True)
class Detection:
    box: BoxXYXY
    score: float
    label: str = "person"


class Detector(Protocol):
    """A backend that finds actors in one BGR frame."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...
