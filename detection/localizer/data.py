"""Training views of labelled videos and their cached backbone maps.

The backbone is frozen (ImageNet weights), so each augmented view of a video is pushed through it
once and its stride 8/16/32 maps are kept in memory (float16); training then runs the neck, the
temporal branch and the heads only. A view is one video under one geometric/photometric transform.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from detection.localizer.geometry import apply_letterbox, fit_letterbox, to_tensor_rgb
from detection.localizer.model import STRIDE, ArgusLocalizer, small_gray
from detection.localizer.pseudo import VideoLabels, read_frames

log = logging.getLogger(__name__)

MIN_BOX_HEIGHT = 6.0  # network pixels: smaller actors are ignored regions, not labels
MIN_VISIBLE = 0.5  # a box cropped by the view to less than this share becomes an ignored region
# Many CCTV cameras record fewer pixels than the canvas the model sees (CAVIAR: 384x288, shown at
# 512x384), so their people are soft-edged. Some augmented views are made just as soft.
LOW_DETAIL_SHARE = 0.35
LOW_DETAIL_MIN, LOW_DETAIL_MAX = 0.35, 0.75
# Zoom of the augmented views, relative to fitting the frame to the canvas (< 1: smaller, > 1: a
# crop). The model trains on a smaller canvas than it runs on, so the largest zoom is scaled by that
# ratio: actors must be seen in training at the sizes the inference canvas shows them.
ZOOM_MIN, ZOOM_MAX = 0.35, 1.25


@dataclass
class FrameTargets:
    boxes: np.ndarray  # (N, 4) network pixels
    classes: np.ndarray  # (N,) int
    ignore: np.ndarray  # (N,) bool
    actions: np.ndarray  # (N, A) 0/1
    action_mask: np.ndarray  # (N, A) bool: label known
    vehicles_labelled: bool


@dataclass
class View:
    group: str  # the video it comes from (folds split by this)
    start: int  # first row in the cache
    count: int
    targets: list[FrameTargets]
    clip_label: float  # 1: fight clip, 0: anything else
    identity: bool  # the untransformed view (used for evaluation)


@dataclass
class Augment:
    zoom: float = 1.0
    shift: tuple[float, float] = (0.5, 0.5)
    flip: bool = False
    gray: bool = False
    brightness: float = 0.0
    contrast: float = 1.0
    detail: float = 1.0  # < 1: the view is rendered at this share of its size and scaled back up

    @classmethod
    def random(cls, rng: np.random.Generator, *, canvas_ratio: float = 1.0) -> Augment:
        """`canvas_ratio`: the inference canvas over the training canvas (see ZOOM_MAX)."""
        zoom_max = ZOOM_MAX * max(1.0, canvas_ratio)
        return cls(
            zoom=float(np.exp(rng.uniform(np.log(ZOOM_MIN), np.log(zoom_max)))),
            shift=(float(rng.uniform()), float(rng.uniform())),
            flip=bool(rng.uniform() < 0.5),
            gray=bool(rng.uniform() < 0.2),
            brightness=float(rng.uniform(-25, 25)),
            contrast=float(rng.uniform(0.75, 1.25)),
            detail=float(rng.uniform(LOW_DETAIL_MIN, LOW_DETAIL_MAX)) if rng.uniform() < LOW_DETAIL_SHARE else 1.0,
        )


class FeatureCache:
    """Backbone maps of every frame of every view, row-aligned."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {"s8": [], "s16": [], "s32": [], "gray": []}
        self.rows = 0
        self.views: list[View] = []
        self.tensors: dict[str, torch.Tensor] = {}

    def add(self, maps: dict[str, torch.Tensor]) -> int:
        start = self.rows
        for key, value in maps.items():
            self.parts[key].append(value.half())
        self.rows += maps["s8"].shape[0]
        return start

    def freeze(self) -> None:
        self.tensors = {k: torch.cat(v) for k, v in self.parts.items()}
        self.parts = {}

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def transform_frame(image: np.ndarray, aug: Augment, width: int, height: int) -> tuple[np.ndarray, object]:
    src_h, src_w = image.shape[:2]
    box = fit_letterbox(src_w, src_h, width, height, zoom=aug.zoom, shift=aug.shift)
    out = apply_letterbox(image, box, width, height)
    if aug.flip:
        out = out[:, ::-1]
    if aug.gray:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if aug.contrast != 1.0 or aug.brightness:
        out = cv2.convertScaleAbs(out, alpha=aug.contrast, beta=aug.brightness + 128 * (1 - aug.contrast))
    if aug.detail < 1.0:
        small = (max(1, round(width * aug.detail)), max(1, round(height * aug.detail)))
        out = cv2.resize(cv2.resize(out, small, interpolation=cv2.INTER_AREA), (width, height))
    return np.ascontiguousarray(out), box


def frame_targets(
    labels: VideoLabels,
    frame_pos: int,
    letterbox: object,
    aug: Augment,
    width: int,
    height: int,
    classes: tuple[str, ...],
    actions: tuple[str, ...],
) -> FrameTargets:
    frame = labels.frames[frame_pos]
    n = len(frame.boxes)
    src = np.array([b.box for b in frame.boxes], dtype=np.float32).reshape(n, 4)
    net = letterbox.to_network(src) if n else src  # type: ignore[attr-defined]
    if aug.flip and n:
        net[:, [0, 2]] = width - net[:, [2, 0]]
    full_area = (net[:, 2] - net[:, 0]) * (net[:, 3] - net[:, 1])
    net[:, [0, 2]] = net[:, [0, 2]].clip(0, width)
    net[:, [1, 3]] = net[:, [1, 3]].clip(0, height)
    area = (net[:, 2] - net[:, 0]) * (net[:, 3] - net[:, 1])
    visible = np.where(full_area > 0, area / np.maximum(full_area, 1e-6), 0)
    ignore = np.array([b.ignore for b in frame.boxes], dtype=bool)
    ignore |= (visible < MIN_VISIBLE) | ((net[:, 3] - net[:, 1]) < MIN_BOX_HEIGHT)
    act = np.zeros((n, len(actions)), dtype=np.float32)
    mask = np.zeros((n, len(actions)), dtype=bool)
    for i, b in enumerate(frame.boxes):
        for name, value in b.actions.items():
            j = actions.index(name)
            act[i, j], mask[i, j] = value, True
    keep = area > 1.0
    cls = np.array([classes.index(b.label) for b in frame.boxes], dtype=np.int64)
    return FrameTargets(net[keep], cls[keep], ignore[keep], act[keep], mask[keep], labels.vehicles_labelled)


@torch.inference_mode()
def add_views(
    cache: FeatureCache,
    model: ArgusLocalizer,
    labels: VideoLabels,
    group: str,
    *,
    n_views: int,
    rng: np.random.Generator,
    batch: int = 16,
) -> None:
    cfg = model.config
    wanted = {f.index for f in labels.frames}
    images = [img for idx, _, img in read_frames(Path(labels.path)) if idx in wanted]
    if len(images) != len(labels.frames):
        raise ValueError(f"{labels.path}: decoded {len(images)} labelled frames, expected {len(labels.frames)}")
    clip_label = 1.0 if labels.clip_label == "fight" else 0.0
    canvas_ratio = cfg.infer_width / cfg.input_width
    for v in range(n_views):
        aug = Augment() if v == 0 else Augment.random(rng, canvas_ratio=canvas_ratio)
        warped, targets = [], []
        for pos, image in enumerate(images):
            out, box = transform_frame(image, aug, cfg.input_width, cfg.input_height)
            warped.append(out)
            targets.append(
                frame_targets(labels, pos, box, aug, cfg.input_width, cfg.input_height, cfg.classes, cfg.actions)
            )
        start = cache.rows
        for i in range(0, len(warped), batch):
            tensor = torch.from_numpy(to_tensor_rgb(warped[i : i + batch]))
            s8, s16, s32 = model.backbone_maps(tensor)
            cache.add({"s8": s8, "s16": s16, "s32": s32, "gray": small_gray(tensor)})
        cache.views.append(View(group, start, len(warped), targets, clip_label, v == 0))


def progress(done: int, total: int, what: str) -> None:
    sys.stderr.write(f"\r{what}: {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def heat_sigma(w: float, h: float) -> float:
    """Gaussian spread of an actor's centre on the stride grid (smaller actors: tighter peaks)."""
    return max(0.6, min(w, h) / STRIDE / 3.0)
