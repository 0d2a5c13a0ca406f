"""The localizer behind one interface for the worker, `localize` and the benchmarks.

Load once per process (`LocalizerBackend.load()`), open one `Stream` per camera, and either call
`stream.detect(image)` (the pipeline's Detector protocol) or `backend.step([(stream, image), ...])`
to analyse one frame of several cameras in one batch. CUDA is used when present.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from detection.localizer.checkpoint import load_checkpoint
from detection.localizer.decode import RawActor, decode
from detection.localizer.geometry import Letterbox, apply_letterbox, fit_letterbox, to_tensor_rgb
from detection.localizer.model import ArgusLocalizer, small_gray
from detection.types import ACTIONS_BY_CLASS, Detection

log = logging.getLogger(__name__)

DEFAULT_MIN_SCORE = 0.1  # low on purpose: the tracker's second association stage uses weak boxes


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_CONVS = (nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)


def fuse_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of `model` (in eval mode) with every batch-norm that follows a convolution in a
    Sequential folded into that convolution's weights: the same outputs, about a tenth less CPU per
    frame (measured), since inference never updates the statistics."""
    fused = copy.deepcopy(model).eval()
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, norm = seq[i], seq[i + 1]
            if isinstance(conv, _CONVS) and isinstance(norm, _NORMS):
                seq[i] = fuse_conv_bn_eval(conv, norm)
                seq[i + 1] = nn.Identity()
    return fused


class TimeConv(nn.Module):
    """A (k, 1, 1) Conv3d over (B, C, T, h, w) computed as a (k, 1) Conv2d over (B, C, T, h*w): the
    same sums, but PyTorch's CPU build has no fast kernel for such 3D convolutions (it took 2-3 ms a
    frame in the temporal branch, measured, against about 1 ms this way)."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().flatten(3).contiguous(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.stride, self.padding = (conv.stride[0], 1), (cast(tuple[int, ...], conv.padding)[0], 0)

    @staticmethod
    def fits(module: nn.Module) -> bool:
        return isinstance(module, nn.Conv3d) and module.kernel_size[1:] == (1, 1) and module.groups == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x.flatten(3), self.weight, self.bias, self.stride, self.padding)
        return out.unflatten(3, x.shape[3:])


def temporal_convs_as_2d(model: nn.Module) -> nn.Module:
    """`model` with every (k, 1, 1) Conv3d of a Sequential replaced by its TimeConv, in place."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i, module in enumerate(seq):
            if TimeConv.fits(module):
                seq[i] = TimeConv(cast(nn.Conv3d, module))
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """`model` with every convolution module's weights stored channels-last (NHWC; NDHWC for 3D), in
    place. oneDNN's CPU convolutions work in that layout: with NCHW weights every convolution reorders
    its input and output, which took more than half of the frame (measured: the bare backbone ran 2.7
    times faster at 512x384 on 2 cores). Outputs are the same up to float rounding."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(module, nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def inference_model(model: ArgusLocalizer, device: torch.device) -> ArgusLocalizer:
    """The copy a backend runs: batch-norms folded, temporal convolutions as 2D ones, channels-last
    weights, on `device`. The caller's model is untouched (training may go on using it)."""
    fast = temporal_convs_as_2d(fuse_batch_norms(model).to(device))
    return cast(ArgusLocalizer, to_channels_last(fast))


class LocalizerBackend:
    name = "localizer"

    def __init__(
        self, model: ArgusLocalizer, meta: dict[str, Any], *, device: torch.device, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.model = inference_model(model, device)
        self.meta = meta
        self.device = device
        self.min_score = min_score
        self.config = model.config
        self._lock = threading.Lock()  # one forward at a time per process

    @classmethod
    def load(
        cls, checkpoint: Path | str | None = None, *, device: str | None = None, min_score: float = DEFAULT_MIN_SCORE
    ) -> LocalizerBackend:
        model, meta = load_checkpoint(checkpoint)
        backend = cls(model, meta, device=pick_device(device), min_score=min_score)
        log.info("localizer %s loaded on %s", meta.get("version"), backend.device)
        return backend

    def stream(self) -> Stream:
        """Per-camera state: the cached memories of the last T frames."""
        return Stream(self)

    @torch.inference_mode()
    def step(self, items: Sequence[tuple[Stream, np.ndarray]]) -> list[list[Detection]]:
        """Analyse one BGR frame for each (stream, frame) pair in one batch; detections per item."""
        if not items:
            return []
        cfg = self.config
        boxes = [fit_letterbox(img.shape[1], img.shape[0], cfg.infer_width, cfg.infer_height) for _, img in items]
        batch = to_tensor_rgb(
            [
                apply_letterbox(img, lb, cfg.infer_width, cfg.infer_height)
                for (_, img), lb in zip(items, boxes, strict=True)
            ]
        )
        images = torch.from_numpy(batch).to(self.device)
        with self._lock:
            maps = self.model.backbone_maps(images)
            grays = small_gray(images)
            outputs = self._heads(items, maps, grays)
        return [
            self._detections(raw, lb) for raw, lb in zip(decode(outputs, min_score=self.min_score), boxes, strict=True)
        ]

    def _heads(
        self, items: Sequence[tuple[Stream, np.ndarray]], maps: tuple[torch.Tensor, ...], grays: torch.Tensor
    ) -> Any:
        s8, s16, s32 = maps
        prev = [stream.prev_gray for stream, _ in items]
        prev_gray = torch.cat([p if p is not None else g[None] for p, g in zip(prev, grays, strict=True)])
        features = self.model.features_from_maps(s8, s16, s32, grays, prev_gray)
        memories = []
        # A stream's first frame is compared with itself: no motion yet.
        for i, (stream, _) in enumerate(items):
            stream.push(features.memory[i], grays[i : i + 1])
            memories.append(stream.clip(self.config.clip_len))
        return self.model.heads(features.f2d, torch.stack(memories))

    def _detections(self, actors: list[RawActor], box: Letterbox) -> list[Detection]:
        if not actors:
            return []
        source = box.to_source(np.array([a.box for a in actors], dtype=np.float32))
        out = []
        for actor, xyxy in zip(actors, source, strict=True):
            if xyxy[2] - xyxy[0] < 1 or xyxy[3] - xyxy[1] < 1:
                continue  # a box entirely in the padding
            label = self.config.classes[actor.class_index]
            names = ACTIONS_BY_CLASS.get(label, ())
            probs = {a: float(p) for a, p in zip(self.config.actions, actor.actions, strict=True) if a in names}
            out.append(Detection(box=tuple(float(v) for v in xyxy), score=actor.score, label=label, actions=probs))  # type: ignore[arg-type]
        return out


class Stream:
    """One camera's feature cache. Implements the pipeline's Detector protocol (`detect`)."""

    def __init__(self, backend: LocalizerBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.memories: deque[torch.Tensor] = deque(maxlen=backend.config.clip_len)
        self.prev_gray: torch.Tensor | None = None

    def push(self, memory: torch.Tensor, gray: torch.Tensor) -> None:
        self.memories.append(memory)
        self.prev_gray = gray

    def clip(self, length: int) -> torch.Tensor:
        """(T, C, h, w): the last T memories, the oldest repeated while the stream warms up."""
        items = list(self.memories)
        # Each memory keeps the motion measured against its own predecessor, as in training.
        return torch.stack([items[0]] * (length - len(items)) + items)

    def reset(self) -> None:
        self.memories.clear()
        self.prev_gray = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.backend.step([(self, image)])[0]
