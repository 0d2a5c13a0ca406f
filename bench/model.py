"""The localizer streaming frames, against a bare forward of its 2D backbone, in the same run.

Phases, alternating within each repetition so machine load hits them all (frames decoded beforehand:
decoding is excluded from every phase and reported on its own as `decode_fps`):
- limit: `model.backbone_maps` on one letterboxed frame, already a tensor: the part of the per-frame
  work no streaming design can skip (the backend's own copy of the model: batch-norms folded,
  channels-last weights);
- backbone_nchw: the same forward with the weights in PyTorch's default (NCHW) layout, as the
  backend ran before it stored them channels-last: what the layout alone is worth;
- one_stream: `stream.detect(frame)` (letterbox, backbone, cached temporal branch, heads, decode);
- four_batched: `backend.step` with 4 cameras' frames in one batch (cross-camera batching);
- four_serial: 4 other streams of the same frames, each `stream.detect` in turn;
- one_stream_scene (only for a checkpoint with a scene fight head): one_stream that also keeps the
  scene fight score, as `localize` does (cameras do not); vtest is 10 fps footage, so every frame
  is a scene frame.
Figures are analysed frames per second (a 4-camera step analyses 4 frames) and CPU ms per frame
(all threads of this process: what a busy, shared machine disturbs least), and their ratios to the
limit as speeds (`ratio`: fps / limit fps; `ratio_cpu`: limit CPU per frame / CPU per frame).
With CUDA, the same on the GPU for batches of 1, 4 and 8 cameras, each against the backbone on a
batch of the same size.

Prints one JSON object. Usage: python bench/model.py [--seconds 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/model.py` from anywhere imports the project
from bench._common import spread  # noqa: E402
from bench.ingest import machine  # noqa: E402
from detection.localizer.backend import LocalizerBackend, Stream  # noqa: E402
from detection.localizer.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from detection.localizer.geometry import apply_letterbox, fit_letterbox, rgb_tensor  # noqa: E402
from detection.localizer.inference import fuse_batch_norms  # noqa: E402
from detection.localizer.model import ArgusLocalizer, LocalizerConfig  # noqa: E402

FOOTAGE = [REPO.parent / "shared" / "data" / "vtest.avi", REPO / "var" / "demo" / "vtest.avi"]
FRAMES = 48  # distinct frames cycled through by every phase
TARGETS = {"one_stream_fps": 25.0, "one_stream_ratio": 0.6}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_model() -> tuple[ArgusLocalizer, dict[str, Any], dict[str, Any]]:
    """The default checkpoint, what to report of it and its metadata (the backend reads the scene
    head there); until it exists a seeded random-init model (speed needs no weights)."""
    if DEFAULT_CHECKPOINT.is_file():
        model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
        weights = {"weights": "checkpoint", "version": meta.get("version"), "checkpoint": str(DEFAULT_CHECKPOINT)}
        return model, weights | {"scene_head": "scene_head" in meta}, meta
    torch.manual_seed(0)
    return ArgusLocalizer(LocalizerConfig()).eval(), {"weights": "random-init", "seed": 0, "scene_head": False}, {}


def frames() -> tuple[list[np.ndarray], dict[str, Any]]:
    """FRAMES BGR frames of real footage when present (timed: the decode figure), else synthetic."""
    path = next((p for p in FOOTAGE if p.is_file() and p.stat().st_size > 0), None)
    if path is None:
        rng = np.random.default_rng(0)
        synthetic = [rng.integers(0, 256, (576, 768, 3), dtype=np.uint8) for _ in range(FRAMES)]
        return synthetic, {"frames": "synthetic", "size": [768, 576], "decode_fps": None}
    import av

    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        images = [f.to_ndarray(format="bgr24") for _, f in zip(range(FRAMES), container.decode(stream), strict=False)]
    decode_fps = len(images) / (time.perf_counter() - started)
    height, width = images[0].shape[:2]
    return images, {"frames": f"real: {path.name}", "size": [width, height], "decode_fps": round(decode_fps, 1)}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_second(step: Callable[[int], int], seconds: float) -> tuple[float, float]:
    """(frames per second, CPU ms per frame) of `step(i)` (returning the frames it analysed), called
    for `seconds`. CPU time counts every thread of this process; other processes disturb it least."""
    done, i = 0, 0
    cpu0, started = _cpu_s(), time.perf_counter()
    until = started + seconds
    while time.perf_counter() < until:
        done += step(i)
        i += 1
    return done / (time.perf_counter() - started), 1000 * (_cpu_s() - cpu0) / done


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def backbone_limit(
    backend: LocalizerBackend, images: list[np.ndarray], batch: int, model: ArgusLocalizer | None = None
) -> Callable[[int], int]:
    """A bare backbone forward of `model` (default: the backend's own copy) on `batch` letterboxed
    frames, given as the backend gives them (channels-last) to its own copy and in the default
    layout to another model (a channels-last input would switch its convolutions to that layout)."""
    cfg = backend.config
    net = model or backend.model
    box = fit_letterbox(images[0].shape[1], images[0].shape[0], cfg.infer_width, cfg.infer_height)
    layout = torch.channels_last if model is None else torch.contiguous_format
    tensors = [
        rgb_tensor([apply_letterbox(img, box, cfg.infer_width, cfg.infer_height)] * batch)
        .contiguous(memory_format=layout)
        .to(backend.device)
        for img in images[:8]
    ]

    @torch.inference_mode()
    def step(i: int) -> int:
        net.backbone_maps(tensors[i % len(tensors)])
        _sync(backend.device)
        return batch

    return step


def streams_step(backend: LocalizerBackend, images: list[np.ndarray], streams: list[Stream]) -> Callable[[int], int]:
    """All streams analyse their next frame in one batch (each camera offset in the footage)."""

    def step(i: int) -> int:
        backend.step([(s, images[(i + 7 * k) % len(images)]) for k, s in enumerate(streams)])
        _sync(backend.device)
        return len(streams)

    return step


def serial_step(backend: LocalizerBackend, images: list[np.ndarray], streams: list[Stream]) -> Callable[[int], int]:
    def step(i: int) -> int:
        for k, s in enumerate(streams):
            s.detect(images[(i + 7 * k) % len(images)])
        _sync(backend.device)
        return len(streams)

    return step


def measure(phases: dict[str, Callable[[int], int]], seconds: float, reps: int) -> list[dict[str, tuple[float, float]]]:
    for run in phases.values():  # warm-up: allocator, kernels (a stream's cost is the same while it warms up)
        for i in range(3):
            run(i)
    return [{name: per_second(run, seconds) for name, run in phases.items()} for _ in range(reps)]


def summarise(runs: list[dict[str, tuple[float, float]]], limit: Callable[[str], str]) -> dict[str, Any]:
    """fps and CPU ms per frame of every phase; ratios to its limit, both as speeds (higher is faster)."""
    names = list(runs[0])
    timed = [k for k in names if limit(k) != k]
    return {
        "fps": {k: spread([r[k][0] for r in runs]) for k in names},
        "cpu_ms_per_frame": {k: spread([r[k][1] for r in runs]) for k in names},
        "ratio": {k: spread([r[k][0] / r[limit(k)][0] for r in runs]) for k in timed},
        "ratio_cpu": {k: spread([r[limit(k)][1] / r[k][1] for r in runs]) for k in timed},
    }


def cpu_bench(
    model: ArgusLocalizer, meta: dict[str, Any], images: list[np.ndarray], seconds: float, reps: int
) -> dict[str, Any]:
    backend = LocalizerBackend(model, meta, device=torch.device("cpu"))
    one, four, serial = [backend.stream()], [backend.stream() for _ in range(4)], [backend.stream() for _ in range(4)]
    nchw = cast(ArgusLocalizer, fuse_batch_norms(model))
    phases = {
        "limit": backbone_limit(backend, images, 1),
        "backbone_nchw": backbone_limit(backend, images, 1, nchw),
        "one_stream": streams_step(backend, images, one),
        "four_batched": streams_step(backend, images, four),
        "four_serial": serial_step(backend, images, serial),
    }
    if backend.scene_head is not None:  # as `localize` runs: with the scene fight score
        phases["one_stream_scene"] = streams_step(backend, images, [backend.stream(scene=True)])
    result = summarise(measure(phases, seconds, reps), lambda _: "limit")
    result["stream_cache_kb"] = round(stream_cache_bytes(one[0]) / 1024, 1)
    return result


def gpu_bench(
    model: ArgusLocalizer, meta: dict[str, Any], images: list[np.ndarray], seconds: float, reps: int
) -> dict[str, Any]:
    device = torch.device("cuda")
    backend = LocalizerBackend(model, meta, device=device)
    torch.cuda.reset_peak_memory_stats(device)
    phases: dict[str, Callable[[int], int]] = {}
    for batch in (1, 4, 8):
        phases[f"limit_b{batch}"] = backbone_limit(backend, images, batch)
        phases[f"step_b{batch}"] = streams_step(backend, images, [backend.stream() for _ in range(batch)])
    result = summarise(measure(phases, seconds, reps), lambda k: k.replace("step_", "limit_"))
    result["device"] = torch.cuda.get_device_name(device)
    result["peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


def stream_cache_bytes(stream: Stream) -> int:
    tensors = [*stream.memories, *([stream.prev_gray] if stream.prev_gray is not None else [])]
    scene = [t for frame in stream.scene.frames for t in frame] if stream.scene is not None else []
    return sum(t.numel() * t.element_size() for t in tensors + scene)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per phase and repetition")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    info = machine() | {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    rss_before = rss_mb()
    model, weights, meta = load_model()
    images, footage = frames()
    cfg = model.config
    result: dict[str, Any] = {
        "bench": "model",
        "what": "analysed frames/s of the localizer's streams (one camera; 4 cameras batched; 4 one by one) "
        "vs a bare backbone forward on one letterboxed frame; decoding excluded (decode_fps: on its own)",
        "config": vars(args) | {"input": [cfg.infer_width, cfg.infer_height], "clip_len": cfg.clip_len},
        "model": weights,
        "footage": footage,
        "targets": TARGETS,
        "cpu": cpu_bench(model, meta, images, args.seconds, args.reps),
    }
    if torch.cuda.is_available():
        result["gpu"] = gpu_bench(model, meta, images, args.seconds, args.reps)
    one = result["cpu"]
    result["meets_targets"] = {
        "one_stream_fps": one["fps"]["one_stream"]["median"] >= TARGETS["one_stream_fps"],
        "one_stream_ratio": one["ratio"]["one_stream"]["median"] >= TARGETS["one_stream_ratio"],
    }
    result["memory"] = {"rss_peak_mb": round(rss_mb(), 1), "rss_before_model_mb": round(rss_before, 1)}
    info["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
