"""Export the localizer to ONNX, as the two graphs a streaming runtime needs.

    python -m detection.localizer.export --out model.onnx [--checkpoint FILE] [--opset 18]

writes model.frame.onnx, model.heads.onnx and model.json (config, label map, version, tensor names):
- frame graph, once per frame: images (B, 3, H, W) RGB in [0, 1], letterboxed to the config's
  input size, and prev_gray (B, 1, H/4, W/4), the previous frame's `gray` output (the frame's own
  `gray` for a stream's first frame) -> f2d (B, neck, H/8, W/8), memory (B, C, H/16, W/16), gray;
- heads graph, once per keyframe: f2d and memories (B, T, C, H/16, W/16), the stream's last T
  `memory` outputs, oldest first (the oldest repeated while fewer than T exist) -> heatmap, size
  and actions logits (decode them as detection/localizer/decode.py does).
Two graphs rather than one clip graph: a clip graph would run the backbone on all T frames of every
clip, T times the work the per-frame cache saves (see backend.py, which runs the same split).

The export needs the `onnx` and `onnxscript` packages, which Argus does not install; without them
the command says so and exits with status 2. The graphs are traced with torch.export, which needs
neither (the tests check that part).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detection.localizer.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, scene_features
from detection.localizer.model import MEMORY_STRIDE, ArgusLocalizer

ONNX_PACKAGES = ("onnx", "onnxscript")
FRAME_INPUTS, FRAME_OUTPUTS = ["images", "prev_gray"], ["f2d", "memory", "gray"]
HEADS_INPUTS, HEADS_OUTPUTS = ["f2d", "memories"], ["heatmap", "size", "actions"]


class ExportError(Exception):
    """The export cannot be done here (the message says why)."""


class FrameGraph(nn.Module):
    """The per-frame part: what backend.step computes once per frame and caches."""

    def __init__(self, model: ArgusLocalizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, prev_gray: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.model.frame_features(images, prev_gray)
        return features.f2d, features.memory, features.gray


class HeadsGraph(nn.Module):
    """The per-keyframe part: temporal branch over the cached memories, fusion and heads."""

    def __init__(self, model: ArgusLocalizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, f2d: torch.Tensor, memories: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model.heads(f2d, memories)
        return outputs.heatmap, outputs.size, outputs.actions


def example_inputs(model: ArgusLocalizer, batch: int = 2) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Inputs of the right shapes for both graphs (batch > 1, so the batch axis stays dynamic)."""
    cfg = model.config
    height, width = cfg.infer_height, cfg.infer_width
    images = torch.rand(batch, 3, height, width)
    prev_gray = torch.rand(batch, 1, height // 4, width // 4)
    f2d = torch.rand(batch, cfg.neck_channels, height // 8, width // 8)
    mem_shape = (cfg.memory_channels + 1, height // MEMORY_STRIDE, width // MEMORY_STRIDE)
    memories = torch.rand(batch, cfg.clip_len, *mem_shape)
    return (images, prev_gray), (f2d, memories)


def exported_programs(model: ArgusLocalizer) -> tuple[torch.export.ExportedProgram, torch.export.ExportedProgram]:
    """Both graphs traced by torch.export with a dynamic batch axis (the ONNX exporter's first step)."""
    model = model.eval()
    frame_args, heads_args = example_inputs(model)
    batch = {0: torch.export.Dim.DYNAMIC}
    frame = torch.export.export(FrameGraph(model), frame_args, dynamic_shapes=(batch, batch))
    heads = torch.export.export(HeadsGraph(model), heads_args, dynamic_shapes=(batch, batch))
    return frame, heads


def missing_packages() -> list[str]:
    return [name for name in ONNX_PACKAGES if find_spec(name) is None]


def output_paths(out: Path) -> tuple[Path, Path, Path]:
    stem = out.with_suffix("") if out.suffix == ".onnx" else out
    return stem.with_suffix(".frame.onnx"), stem.with_suffix(".heads.onnx"), stem.with_suffix(".json")


def export(checkpoint: Path, out: Path, *, opset: int = 18) -> tuple[Path, Path, Path]:
    missing = missing_packages()
    if missing:
        raise ExportError(
            f"ONNX export needs the {' and '.join(missing)} package(s), which are not installed "
            f"(pip install {' '.join(missing)}); nothing was written"
        )
    try:
        model, meta = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from exc
    frame_path, heads_path, card_path = output_paths(out)
    frame_path.parent.mkdir(parents=True, exist_ok=True)
    frame, heads = exported_programs(model)
    for program, path, inputs, outputs in (
        (frame, frame_path, FRAME_INPUTS, FRAME_OUTPUTS),
        (heads, heads_path, HEADS_INPUTS, HEADS_OUTPUTS),
    ):
        torch.onnx.export(
            program,
            (),
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=opset,
            dynamo=True,
            external_data=False,  # one self-contained file per graph (the weights are a few MB)
        )
    card_path.write_text(json.dumps(model_card(meta, frame_path, heads_path), indent=2) + "\n")
    return frame_path, heads_path, card_path


def model_card(meta: dict[str, Any], frame_path: Path, heads_path: Path) -> dict[str, Any]:
    head = meta.get("scene_head")
    return {
        "version": meta.get("version"),
        "config": meta.get("config"),
        "labels": meta.get("labels"),
        "frame_graph": {"file": frame_path.name, "inputs": FRAME_INPUTS, "outputs": FRAME_OUTPUTS},
        "heads_graph": {"file": heads_path.name, "inputs": HEADS_INPUTS, "outputs": HEADS_OUTPUTS},
        # A logistic regression on motion features (detection/localizer/scene.py): numbers, not a graph.
        "scene_head": {**head.to_dict(), **scene_features()} if head is not None else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detection.localizer.export", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="NAME.onnx: writes NAME.frame.onnx, NAME.heads.onnx")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--opset", type=int, default=18)
    args = parser.parse_args(argv)
    try:
        paths = export(args.checkpoint, args.out, opset=args.opset)
    except ExportError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
