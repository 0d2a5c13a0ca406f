"""The localizer behind one interface for the worker, `localize` and the benchmarks.

Load once per process (`LocalizerBackend.load()`), open one `Stream` per camera, and either call
`stream.detect(image)` (the pipeline's Detector protocol) or `backend.step([(stream, image), ...])`
to analyse one frame of several cameras in one batch. CUDA is used when present.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detection.localizer.checkpoint import load_checkpoint
from detection.localizer.decode import RawActor, actors_at, find_peaks
from detection.localizer.geometry import Letterbox, apply_letterbox, fit_letterbox, rgb_tensor
from detection.localizer.inference import CellHeads, inference_model
from detection.localizer.model import ArgusLocalizer, small_gray
from detection.localizer.scene import SceneHead, SceneMotion, map_fighting
from detection.types import ACTIONS_BY_CLASS, Detection

log = logging.getLogger(__name__)

DEFAULT_MIN_SCORE = 0.1  # low on purpose: the tracker's second association stage uses weak boxes


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LocalizerBackend:
    name = "localizer"

    def __init__(
        self, model: ArgusLocalizer, meta: dict[str, Any], *, device: torch.device, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.model = inference_model(model, device)
        self.cell_heads = CellHeads(self.model)
        self.meta = meta
        self.device = device
        self.min_score = min_score
        self.config = model.config
        self.scene_head: SceneHead | None = meta.get("scene_head")
        self.fight_index = self.config.actions.index("fighting")
        self._lock = threading.Lock()  # one forward at a time per process

    @classmethod
    def load(
        cls, checkpoint: Path | str | None = None, *, device: str | None = None, min_score: float = DEFAULT_MIN_SCORE
    ) -> LocalizerBackend:
        model, meta = load_checkpoint(checkpoint)
        backend = cls(model, meta, device=pick_device(device), min_score=min_score)
        log.info("localizer %s loaded on %s", meta.get("version"), backend.device)
        return backend

    def stream(self, fps: float | None = None, *, scene: bool = False) -> Stream:
        """Per-camera state: the cached memories of the last T frames. `scene`: also keep the scene
        fight score (`Stream.scene_fighting`; needs a checkpoint with a scene head), read from frames
        about 0.1 s apart given the stream's analysed frames per second `fps` (None: every frame)."""
        return Stream(self, fps, scene=scene)

    @torch.inference_mode()
    def step(self, items: Sequence[tuple[Stream, np.ndarray]]) -> list[list[Detection]]:
        """Analyse one BGR frame for each (stream, frame) pair in one batch; detections per item."""
        if not items:
            return []
        cfg = self.config
        boxes = [fit_letterbox(img.shape[1], img.shape[0], cfg.infer_width, cfg.infer_height) for _, img in items]
        canvases = [
            apply_letterbox(img, lb, cfg.infer_width, cfg.infer_height)
            for (_, img), lb in zip(items, boxes, strict=True)
        ]
        images = rgb_tensor(canvases).to(self.device)
        with self._lock:
            maps = self.model.backbone_maps(images)
            grays = small_gray(images)
            fused = self._fused(items, maps, grays)
            actors = self._actors(fused)
            self._scene(items, maps[1], grays, fused)
        return [self._detections(raw, lb) for raw, lb in zip(actors, boxes, strict=True)]

    def _fused(
        self, items: Sequence[tuple[Stream, np.ndarray]], maps: tuple[torch.Tensor, ...], grays: torch.Tensor
    ) -> torch.Tensor:
        s8, s16, s32 = maps
        prev = [stream.prev_gray for stream, _ in items]
        prev_gray = torch.cat([p if p is not None else g[None] for p, g in zip(prev, grays, strict=True)])
        features = self.model.features_from_maps(s8, s16, s32, grays, prev_gray)
        memories = []
        # A stream's first frame is compared with itself: no motion yet.
        for i, (stream, _) in enumerate(items):
            stream.push(features.memory[i], grays[i : i + 1])
            memories.append(stream.clip(self.config.clip_len))
        return self.model.fused(features.f2d, torch.stack(memories))

    def _scene(
        self, items: Sequence[tuple[Stream, np.ndarray]], s16: torch.Tensor, grays: torch.Tensor, fused: torch.Tensor
    ) -> None:
        """On each stream's scene frames: its scene fight score, the mean of the head's probability
        and the localizer's fighting map (the clip score cross-validated in the model card)."""
        head = self.scene_head
        due = [i for i, (stream, _) in enumerate(items) if stream.scene is not None and stream.scene.due()]
        if head is None or not due:
            return
        # The full action map only on scene frames: elsewhere the heads run at actors' peaks only.
        maps = map_fighting(self.model.action_head(fused[due]), self.fight_index)
        for i, map_value in zip(due, maps, strict=True):
            stream = items[i][0]
            assert stream.scene is not None  # filtered above
            window = stream.scene.push(s16[i].float(), grays[i].float())
            stream.scene_fighting = (float(head.probability(window[None])[0]) + map_value) / 2

    def _actors(self, fused: torch.Tensor) -> list[list[RawActor]]:
        """Decode each frame: the heatmap densely, sizes and actions only at its peaks."""
        heatmap = self.model.heatmap_head(fused)
        actors = []
        for item, peaks in zip(fused, find_peaks(heatmap, min_score=self.min_score), strict=True):
            size, actions = self.cell_heads(item, peaks.ys, peaks.xs)
            actors.append(actors_at(peaks, size, torch.sigmoid(actions)))
        return actors

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

    def __init__(self, backend: LocalizerBackend, fps: float | None = None, *, scene: bool = False) -> None:
        self.backend = backend
        self.name = backend.name
        self.track_start_score = backend.config.track_start_score  # read by pipeline.new_state
        self.memories: deque[torch.Tensor] = deque(maxlen=backend.config.clip_len)
        self.prev_gray: torch.Tensor | None = None
        # Cameras' rules read actors, not the scene score: only a stream that asks pays for it.
        self.scene = SceneMotion.for_rate(fps) if scene and backend.scene_head is not None else None
        # The latest scene fight score (0-1), updated on scene frames; None when not kept.
        self.scene_fighting: float | None = None

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
        self.scene_fighting = None
        if self.scene is not None:
            self.scene.reset()

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.backend.step([(self, image)])[0]
