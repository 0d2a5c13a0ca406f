"""Training targets on the stride-8 grid and the losses of the three heads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from detection.localizer.data import FrameTargets, heat_sigma
from detection.localizer.model import STRIDE, HeadOutputs

NEIGHBOUR_WEIGHT = 0.5  # cells next to a centre also learn its box and actions, with less weight


@dataclass
class GridTargets:
    heatmap: torch.Tensor  # (B, C, h, w) gaussian peaks, exactly 1 at centres
    weight: torch.Tensor  # (B, C, h, w) 0 inside ignored regions / unlabelled classes
    cells: torch.Tensor  # (M, 3) batch, y, x of cells that learn a box and actions
    size: torch.Tensor  # (M, 4) log w, log h (stride units), offset x, y
    cell_weight: torch.Tensor  # (M,)
    actions: torch.Tensor  # (M, A)
    action_mask: torch.Tensor  # (M, A)


def build_targets(frames: list[FrameTargets], classes: int, actions: int, grid: tuple[int, int]) -> GridTargets:
    h, w = grid
    heat = np.zeros((len(frames), classes, h, w), dtype=np.float32)
    weight = np.ones_like(heat)
    cells, sizes, cell_w, acts, masks = [], [], [], [], []
    ys, xs = np.mgrid[0:h, 0:w]
    for b, t in enumerate(frames):
        if not t.vehicles_labelled:
            weight[b, 1:] = 0.0
        for box, cls, ignore, act, mask in zip(t.boxes, t.classes, t.ignore, t.actions, t.action_mask, strict=True):
            cx, cy = (box[0] + box[2]) / 2 / STRIDE, (box[1] + box[3]) / 2 / STRIDE
            bw, bh = (box[2] - box[0]) / STRIDE, (box[3] - box[1]) / STRIDE
            gx, gy = min(int(cx), w - 1), min(int(cy), h - 1)
            if ignore:
                inside = (
                    (xs + 0.5 >= box[0] / STRIDE)
                    & (xs + 0.5 <= box[2] / STRIDE)
                    & (ys + 0.5 >= box[1] / STRIDE)
                    & (ys + 0.5 <= box[3] / STRIDE)
                )
                weight[b, cls][inside] = 0.0
                weight[b, cls, gy, gx] = 0.0
                continue
            sigma = heat_sigma(bw * STRIDE, bh * STRIDE)
            gauss = np.exp(-((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2) / (2 * sigma**2))
            heat[b, cls] = np.maximum(heat[b, cls], gauss)
            heat[b, cls, gy, gx] = 1.0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    x, y = gx + dx, gy + dy
                    if 0 <= x < w and 0 <= y < h:
                        cells.append((b, y, x))
                        sizes.append((np.log(max(bw, 0.1)), np.log(max(bh, 0.1)), cx - (x + 0.5), cy - (y + 0.5)))
                        cell_w.append(1.0 if dx == dy == 0 else NEIGHBOUR_WEIGHT)
                        acts.append(act)
                        masks.append(mask)
    heat[heat < 1.0] = np.minimum(heat[heat < 1.0], 0.999)
    return GridTargets(
        torch.from_numpy(heat),
        torch.from_numpy(weight),
        torch.tensor(cells, dtype=torch.long).reshape(-1, 3),
        torch.tensor(np.array(sizes, dtype=np.float32)).reshape(-1, 4),
        torch.tensor(cell_w, dtype=torch.float32),
        torch.tensor(np.array(acts, dtype=np.float32)).reshape(-1, actions),
        torch.tensor(np.array(masks, dtype=bool)).reshape(-1, actions),
    )


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1.0).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - pos)
    return ((pos_loss + neg_loss) * weight).sum() / pos.sum().clamp(min=1.0)


def localizer_loss(
    out: HeadOutputs, t: GridTargets, clip_labels: torch.Tensor, fight_index: int, *, mil_weight: float = 0.5
) -> dict[str, torch.Tensor]:
    losses = {"heat": focal_loss(out.heatmap, t.heatmap, t.weight)}
    if len(t.cells):
        b, y, x = t.cells.T
        size = out.size[b, :, y, x]  # (M, 4)
        l1 = F.smooth_l1_loss(size, t.size, reduction="none", beta=0.1).sum(dim=1)
        losses["size"] = (l1 * t.cell_weight).sum() / t.cell_weight.sum()
        logits = out.actions[b, :, y, x]  # (M, A)
        bce = F.binary_cross_entropy_with_logits(logits, t.actions, reduction="none")
        mask = t.action_mask.float() * t.cell_weight[:, None]
        losses["actions"] = (bce * mask).sum() / mask.sum().clamp(min=1.0)
    # Weak clip labels, as multiple-instance learning: the strongest cells of the fighting map
    # must say whether the clip shows a fight, wherever the teacher found (or missed) people.
    top = out.actions[:, fight_index].flatten(1).topk(4, dim=1).values.mean(dim=1)
    losses["mil"] = mil_weight * F.binary_cross_entropy_with_logits(top, clip_labels)
    return losses
