"""A scene-level fight score from motion in the frozen backbone's features.

The localizer's fighting score lives on actors, and the person detector misses many contorted
fighters. This head asks a simpler question of the whole frame: how much, and how sharply, do the
stride-16 features change over the last 0.1 and 0.2 s? Its features are fixed functions of the frozen
ImageNet backbone, so the head is a logistic regression that trains and cross-validates in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from detection.metrics import roc_auc

LAGS = (1, 2)  # analysed frames back, at SCENE_FPS: 0.1 s and 0.2 s
WINDOW = 8  # descriptors averaged into one window, newest last
SCENE_FPS = 10.0  # the rate the lags are defined at (training reads clips at it)
C_GRID = (0.01, 0.1, 1.0)
MOTION_SIZE = len(LAGS) * (96 + 96 + 2)  # descriptor length of the motion features
MAP_TOP_K = 4  # cells of the localizer's fighting map in its scene value (as many as its MIL loss reads)


def map_fighting(action_logits: torch.Tensor, fight_index: int, k: int = MAP_TOP_K) -> list[float]:
    """Per frame of (B, A, h, w) action logits: the mean of the k highest fighting probabilities over
    the whole map. No person detection is needed, so contorted fighters the detector misses still count."""
    probs = torch.sigmoid(action_logits[:, fight_index].flatten(1))
    top = probs.topk(min(k, probs.shape[1]), dim=1).values
    return [float(v) for v in top.mean(dim=1)]


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


class SceneMotion:
    """One camera's motion descriptors: fed every `every`-th analysed frame (a scene frame, about
    SCENE_FPS a second), it returns the window mean the head reads. Training feeds its clips through
    this same class, so what is trained is what runs. Warming up, the oldest frame stands in for the
    missing ones (no motion), as the localizer's memories do."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every = every
        self.count = 0
        self.frames: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=max(LAGS))
        self.descriptors: deque[np.ndarray] = deque(maxlen=WINDOW)

    @classmethod
    def for_rate(cls, fps: float | None) -> SceneMotion:
        """For a stream analysed at `fps` frames per second (None: unknown, every frame)."""
        return cls(max(1, round(fps / SCENE_FPS)) if fps else 1)

    def due(self) -> bool:
        """Count one analysed frame; True when it is a scene frame."""
        self.count += 1
        return (self.count - 1) % self.every == 0

    def push(self, s16: torch.Tensor, gray: torch.Tensor) -> np.ndarray:
        """(96, h, w) stride-16 map and (1, H, W) grey image of a scene frame -> its (D,) window."""
        history = list(self.frames)
        history = [history[0] if history else (s16, gray)] * (max(LAGS) - len(history)) + history
        maps = torch.stack([m for m, _ in history] + [s16])
        greys = torch.stack([g for _, g in history] + [gray])
        self.descriptors.append(frame_descriptors(maps, greys)[0].double().cpu().numpy())
        self.frames.append((s16, gray))
        return np.mean(self.descriptors, axis=0)

    def reset(self) -> None:
        self.count = 0
        self.frames.clear()
        self.descriptors.clear()


def clip_windows(s16: torch.Tensor, gray: torch.Tensor) -> np.ndarray:
    """(N, 96, h, w) maps and (N, 1, H, W) greys of a clip's scene frames -> (N, D) windows."""
    motion = SceneMotion()
    return np.stack([motion.push(m, g) for m, g in zip(s16, gray, strict=True)])


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
        mean, scale, weight = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weight"))
        if not (mean.shape == scale.shape == weight.shape and mean.ndim == 1):
            raise ValueError("scene head: mean, scale and weight must be vectors of one length")
        return cls(mean, scale, weight, bias=float(data["bias"]), c=float(data["c"]))  # type: ignore[arg-type]


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
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

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
    """ROC AUC (`metrics.roc_auc`), NaN with one class only."""
    value = roc_auc(scores, [bool(y) for y in labels])
    return math.nan if value is None else value


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
        mean = float(np.nanmean(aucs)) if not all(math.isnan(a) for a in aucs) else -math.inf
        if mean > best_auc + 1e-12:
            best, best_auc = c, mean
    return best


def train_head(clips: Sequence[ClipWindows], seed: int = 0) -> SceneHead:
    """C by inner cross-validation, then one fit on every window of `clips`."""
    return fit_logistic(*stack(clips), choose_c(clips, seed=seed))
