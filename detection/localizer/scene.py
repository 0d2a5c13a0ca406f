"""A scene-level fight score from motion in the frozen backbone's features.

The localizer's fighting score lives on actors, and the person detector misses many contorted
fighters. This head asks a simpler question of the whole frame: how much, and how sharply, do the
stride-16 features change over the last 0.1 and 0.2 s? Its features are fixed functions of the frozen
ImageNet backbone, so the head is a logistic regression that trains and cross-validates in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

LAGS = (1, 2)  # analysed frames back, at SCENE_FPS: 0.1 s and 0.2 s
WINDOW = 8  # descriptors averaged into one window, newest last
SCENE_FPS = 10.0  # the rate the lags are defined at (training reads clips at it)
C_GRID = (0.01, 0.1, 1.0)


def frame_descriptors(s16: torch.Tensor, gray: torch.Tensor, s32: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 96, h, w) stride-16 maps and (N, 1, H, W) grey images of N consecutive analysed frames
    -> (N - max(LAGS), D) descriptors, one per frame that has every lag behind it. With `s32`
    the spatial mean of the stride-32 map is appended (appearance)."""
    first = max(LAGS)
    parts = []
    for lag in LAGS:
        change = (s16[first:] - s16[first - lag : len(s16) - lag]).abs()
        grey = (gray[first:] - gray[first - lag : len(gray) - lag]).abs().flatten(1)
        parts += [change.mean(dim=(2, 3)), change.amax(dim=(2, 3))]
        parts += [grey.mean(dim=1, keepdim=True), grey.amax(dim=1, keepdim=True)]
    if s32 is not None:
        parts.append(s32[first:].mean(dim=(2, 3)))
    return torch.cat(parts, dim=1)


def window_means(descriptors: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Row t: the mean of descriptors max(0, t - window + 1)..t (a stream warming up averages fewer)."""
    sums = np.cumsum(np.vstack([np.zeros((1, descriptors.shape[1])), descriptors]), axis=0)
    ends = np.arange(1, len(descriptors) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)[:, None]


@dataclass
class SceneHead:
    """Standardise, then a logistic regression: p = sigmoid(((x - mean) / scale) . weight + bias)."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: float
    c: float

    def probability(self, windows: np.ndarray) -> np.ndarray:
        z = ((windows - self.mean) / self.scale) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def to_dict(self) -> dict[str, object]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weight": self.weight.tolist(),
            "bias": self.bias,
            "c": self.c,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SceneHead:
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weight")]
        if not (arrays[0].shape == arrays[1].shape == arrays[2].shape and arrays[0].ndim == 1):
            raise ValueError("scene head: mean, scale and weight must be vectors of one length")
        return cls(*arrays, bias=float(data["bias"]), c=float(data["c"]))  # type: ignore[arg-type]


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> SceneHead:
    """L2 logistic regression (sklearn's convention: C x summed log-loss + |w|^2 / 2), solved by LBFGS
    in float64. Features are standardised on these rows; constant ones get scale 1."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    xs = torch.from_numpy((x - mean) / scale)
    ys = torch.from_numpy(y.astype(np.float64))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = c * torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, ys, reduction="sum")
        loss = loss + 0.5 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return SceneHead(mean, scale, w.detach().numpy().copy(), float(b.detach()), c)


@dataclass
class ClipWindows:
    """The windows of one clip view, for training and cross-validation."""

    group: str
    label: int
    identity: bool  # the unflipped view: the one that is scored
    windows: np.ndarray


def stack(clips: Sequence[ClipWindows]) -> tuple[np.ndarray, np.ndarray]:
    x = np.vstack([c.windows for c in clips])
    y = np.concatenate([np.full(len(c.windows), c.label) for c in clips])
    return x, y


def clip_scores(head: SceneHead, clips: Sequence[ClipWindows], top_share: float = 0.25) -> dict[str, float]:
    """Per unflipped clip: the mean of the top quarter of its window probabilities."""
    out = {}
    for clip in clips:
        if clip.identity:
            probs = np.sort(head.probability(clip.windows))[::-1]
            out[clip.group] = float(probs[: max(1, round(len(probs) * top_share))].mean())
    return out


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    pos = np.array([s for s, y in zip(scores, labels, strict=True) if y])
    neg = np.array([s for s, y in zip(scores, labels, strict=True) if not y])
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def split_groups(clips: Sequence[ClipWindows], k: int, seed: int) -> list[set[str]]:
    """Stratified folds of the clips' groups, deterministic for a seed (for the inner search)."""
    rng = np.random.default_rng(seed)
    folds: list[set[str]] = [set() for _ in range(k)]
    for label in (1, 0):
        names = sorted({c.group for c in clips if c.label == label})
        for i, j in enumerate(rng.permutation(len(names))):
            folds[i % k].add(names[j])
    return folds


def choose_c(clips: Sequence[ClipWindows], grid: Sequence[float] = C_GRID, k: int = 4, seed: int = 0) -> float:
    """The C of `grid` with the best mean clip AUC over an inner k-fold split by clip (ties: smaller C)."""
    folds = split_groups(clips, k, seed)
    best, best_auc = grid[0], -math.inf
    for c in grid:
        aucs = []
        for held in folds:
            head = fit_logistic(*stack([cl for cl in clips if cl.group not in held]), c)
            scored = clip_scores(head, [cl for cl in clips if cl.group in held])
            labels = {cl.group: cl.label for cl in clips}
            aucs.append(auc(list(scored.values()), [labels[g] for g in scored]))
        if float(np.mean(aucs)) > best_auc + 1e-12:
            best, best_auc = c, float(np.mean(aucs))
    return best


def train_head(clips: Sequence[ClipWindows], seed: int = 0) -> SceneHead:
    """C by inner cross-validation, then one fit on every window of `clips`."""
    return fit_logistic(*stack(clips), choose_c(clips, seed=seed))
