"""Head outputs -> actor boxes: centre peaks of the heatmap, their sizes, offsets and actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from detection.localizer.model import STRIDE, HeadOutputs


@dataclass(frozen=True, slots=True)
class RawActor:
    box: tuple[float, float, float, float]  # network pixels
    class_index: int
    score: float
    actions: np.ndarray  # (A,) probabilities


MAX_ACTORS = 64  # peaks kept per frame, best first
NMS_IOU = 0.6


class Peaks(NamedTuple):
    """One frame's centre peaks at or above the minimum score, best first."""

    scores: torch.Tensor  # (N,) probabilities
    classes: torch.Tensor  # (N,) actor class indices
    ys: torch.Tensor  # (N,) cells of the stride-8 grid
    xs: torch.Tensor


def decode(
    outputs: HeadOutputs, *, min_score: float = 0.1, max_actors: int = MAX_ACTORS, nms_iou: float = NMS_IOU
) -> list[list[RawActor]]:
    """One list of actors per batch item. Peaks are 3x3 local maxima of the centre heatmap; a
    class-wise NMS then removes peaks that describe the same actor twice."""
    actors = []
    for b, peaks in enumerate(find_peaks(outputs.heatmap, min_score=min_score, max_actors=max_actors)):
        size = outputs.size[b][:, peaks.ys, peaks.xs]
        actions = torch.sigmoid(outputs.actions[b][:, peaks.ys, peaks.xs])
        actors.append(actors_at(peaks, size, actions, nms_iou=nms_iou))
    return actors


def find_peaks(heatmap: torch.Tensor, *, min_score: float = 0.1, max_actors: int = MAX_ACTORS) -> list[Peaks]:
    """(B, classes, h, w) centre logits -> the peaks of each batch item."""
    heat = torch.sigmoid(heatmap)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    found = []
    for item in peaks:
        classes, height, width = item.shape
        scores, flat = item.flatten().topk(min(max_actors, item.numel()))
        keep = scores >= min_score
        scores, flat = scores[keep], flat[keep]
        cell = flat % (height * width)
        found.append(Peaks(scores, flat // (height * width), cell // width, cell % width))
    return found


def actors_at(peaks: Peaks, size: torch.Tensor, actions: torch.Tensor, *, nms_iou: float = NMS_IOU) -> list[RawActor]:
    """Boxes and actions of `peaks`, from the size head (4, N) and the action probabilities (A, N)
    read at their cells; overlapping boxes of one class are suppressed."""
    if peaks.scores.numel() == 0:
        return []
    cx = (peaks.xs.float() + 0.5 + size[2]) * STRIDE
    cy = (peaks.ys.float() + 0.5 + size[3]) * STRIDE
    w = size[0].clamp(max=8).exp() * STRIDE
    h = size[1].clamp(max=8).exp() * STRIDE
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1).cpu().numpy()
    acts = actions.T.cpu().numpy()
    scores, classes = peaks.scores.cpu().numpy(), peaks.classes.cpu().numpy()
    order = nms(boxes, scores, classes, nms_iou)
    return [RawActor(tuple(float(v) for v in boxes[i]), int(classes[i]), float(scores[i]), acts[i]) for i in order]  # type: ignore[arg-type]


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy per-class non-maximum suppression; returns kept indices, best first."""
    order = list(np.argsort(-scores))
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(best)
        order = [i for i in order if classes[i] != classes[best] or box_iou(boxes[best], boxes[i]) < iou_threshold]
    return kept


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
