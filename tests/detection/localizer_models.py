"""Seeded random localizers for tests: the format and plumbing of the model do not depend on weights."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from detection.localizer.checkpoint import save_checkpoint
from detection.localizer.model import ArgusLocalizer, LocalizerConfig

SMALL = LocalizerConfig(input_height=64, input_width=96, infer_height=64, infer_width=96)  # 8x12 head cells: fast


def random_model(config: LocalizerConfig = SMALL, *, seed: int = 0, heat_bias: float | None = None) -> ArgusLocalizer:
    """A seeded random model whose batch-norm statistics are measured on random clips, so its
    outputs vary with the input (fresh statistics leave activations vanishing to ~1e-6).
    heat_bias: the centre heatmap's logit offset; about -2 makes a handful of actors per frame."""
    torch.manual_seed(seed)
    model = ArgusLocalizer(config)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d)]
    for norm in norms:
        norm.momentum = None  # a plain average over the calibration batch
        norm.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.rand(2, config.clip_len, 3, config.input_height, config.input_width))
        if heat_bias is not None:
            model.heatmap_head[-1].weight.mul_(3.0)  # type: ignore[operator]
            model.heatmap_head[-1].bias.fill_(heat_bias)  # type: ignore[operator]
    return model.eval()


def write_random_checkpoint(path: Path, config: LocalizerConfig = SMALL, *, heat_bias: float | None = -2.0) -> Path:
    save_checkpoint(
        random_model(config, heat_bias=heat_bias), path, version="random-test", record={"seed": 0, "weights": "random"}
    )
    return path
