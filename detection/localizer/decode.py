"""Head outputs -> actor boxes: centre peaks of the heatmap, their sizes, offsets and actions."""

from __future__ import annotations

from dataclasses import dataclass

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


def decode(
    outputs: HeadOutputs, *, min_score: float = 0.1, max_actors: int = 64, nms_iou: float = 0.6
) -> list[list[RawActor]]:
    """One list of actors per batch item. Peaks are 3x3 local maxima of the centre heatmap; a
    class-wise NMS then removes peaks that describe the same actor twice."""
    heat = torch.sigmoid(outputs.heatmap)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    actions = torch.sigmoid(outputs.actions)
    return [
        _decode_one(peaks[b], outputs.size[b], actions[b], min_score, max_actors, nms_iou) for b in range(heat.shape[0])
    ]


def _decode_one(
    peaks: torch.Tensor, size: torch.Tensor, actions: torch.Tensor, min_score: float, max_actors: int, nms_iou: float
) -> list[RawActor]:
    classes, height, width = peaks.shape
    scores, flat = peaks.flatten().topk(min(max_actors, peaks.numel()))
    keep = scores >= min_score
    scores, flat = scores[keep], flat[keep]
    if flat.numel() == 0:
        return []
    cls = flat // (height * width)
    cell = flat % (height * width)
    ys, xs = cell // width, cell % width
    sizes = size[:, ys, xs]  # (4, N)
    cx = (xs.float() + 0.5 + sizes[2]) * STRIDE
    cy = (ys.float() + 0.5 + sizes[3]) * STRIDE
    w = sizes[0].clamp(max=8).exp() * STRIDE
    h = sizes[1].clamp(max=8).exp() * STRIDE
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1).numpy()
    acts = actions[:, ys, xs].T.numpy()
    order = nms(boxes, scores.numpy(), cls.numpy(), nms_iou)
    return [RawActor(tuple(float(v) for v in boxes[i]), int(cls[i]), float(scores[i]), acts[i]) for i in order]  # type: ignore[arg-type]


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
