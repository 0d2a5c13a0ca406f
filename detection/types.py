"""Plain data passed between pipeline stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

# (x1, y1, x2, y2) in pixels of the analysed frame.
BoxXYXY = tuple[float, float, float, float]

# The actor classes and, per class, the actions the localizer scores (its label map).
ACTOR_CLASSES: tuple[str, ...] = ("person", "vehicle")
PERSON_ACTIONS: tuple[str, ...] = ("standing", "walking", "running", "fighting", "falling", "lying")
VEHICLE_ACTIONS: tuple[str, ...] = ("moving", "stopped")
ACTIONS: tuple[str, ...] = PERSON_ACTIONS + VEHICLE_ACTIONS
ACTIONS_BY_CLASS: dict[str, tuple[str, ...]] = {"person": PERSON_ACTIONS, "vehicle": VEHICLE_ACTIONS}


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
    # Action name -> probability for this frame (empty from detectors that score no actions).
    actions: Mapping[str, float] = field(default_factory=dict)


class Detector(Protocol):
    """A backend that finds actors in one BGR frame."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...
