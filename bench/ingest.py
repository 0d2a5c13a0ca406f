"""Ingestion: N simultaneous streams of real footage through Argus's source path, against decoding alone.

Each stream is a process (as each camera is in production: one worker process per camera task).
Two phases run with the same streams, interleaved in each repetition so machine load hits both:
- limit: plain PyAV decode of every frame of the footage (decoder threading as Argus sets it),
  looping, no conversion: what ingestion cannot beat, because it must decode every frame too;
- ingest: detection.sources.iter_frames (realtime=False, loop=True), whose sampler keeps
  `--fps` frames per second of footage and converts only those to BGR at analysis resolution.
A counting PacketTap tells how many source frames ingestion demuxed (one packet per frame for
this footage). Figures are per stream; ratios are ingest / limit, measured in the same run.

Prints one JSON object. Usage: python bench/ingest.py [--streams 8] [--seconds 5] [--reps 3] [--fps 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/ingest.py` from anywhere imports the project
from bench._common import spread  # noqa: E402

# Imported here, not in the timed functions: every pool process loads it once, before the clock starts.
from detection.sources import SourceOptions, iter_frames  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
FOOTAGE = [
    SHARED / "vtest.avi",
    SHARED / "bikes.mp4",
    SHARED / "caviar" / "OneStopEnter1front_h264.mp4",
    *(SHARED / "fight" / "fight" / f"fi00{i}.mp4" for i in range(1, 6)),
]
FALLBACK = REPO / "var" / "demo" / "vtest.avi"


def footage(streams: int) -> list[Path]:
    """`streams` paths: the shared footage that is present, repeated as needed; else the demo copy."""
    present = [p for p in FOOTAGE if p.is_file() and p.stat().st_size > 0]
    if not present and FALLBACK.is_file():
        present = [FALLBACK]
    if not present:
        sys.exit("no footage: provide ../shared/data or run `make footage`")
    return [present[i % len(present)] for i in range(streams)]


@dataclass
class StreamRun:
    path: str
    frames: int  # source frames decoded
    delivered: int  # frames handed to analysis (ingest) or decoded (limit)
    cpu_s: float  # user + system CPU of the stream's process, all its threads
    wall_s: float


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CountingTap:
    """Counts demuxed video packets: the source frames ingestion decoded."""

    def __init__(self) -> None:
        self.packets = 0

    def stream_opened(self, stream: object) -> None:
        pass

    def packet(self, packet: object, when: datetime) -> None:
        self.packets += 1


def _decode_only(path: str, until: float) -> tuple[int, int]:
    frames = 0
    while time.monotonic() < until:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # as detection.sources sets it
            for _ in container.decode(stream):
                frames += 1
                if time.monotonic() >= until:
                    break
    return frames, frames


def _ingest(path: str, until: float, fps: float) -> tuple[int, int]:
    tap = CountingTap()
    delivered = 0
    for _ in iter_frames(path, SourceOptions(fps=fps, loop=True, realtime=False), tap=tap):
        delivered += 1
        if time.monotonic() >= until:
            break
    return tap.packets, delivered


def run_stream(mode: str, path: str, start_at: float, seconds: float, fps: float) -> StreamRun:
    """One stream in its own process, started with the others at wall time `start_at`."""
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, wall0 = _cpu_s(), time.monotonic()
    until = wall0 + seconds
    frames, delivered = _decode_only(path, until) if mode == "limit" else _ingest(path, until, fps)
    return StreamRun(path, frames, delivered, _cpu_s() - cpu0, time.monotonic() - wall0)


# --- Figures --------------------------------------------------------------------------------


def frame_rate(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate or 25)


def _per_stream(runs: Sequence[StreamRun], rates: dict[str, float]) -> dict[str, float]:
    """Means over the streams of one phase: the figures a single camera gets under this load."""
    n = len(runs)
    cpu_s, frames = sum(r.cpu_s for r in runs), max(1, sum(r.frames for r in runs))
    return {
        "source_fps": sum(r.frames / r.wall_s for r in runs) / n,
        "delivered_fps": sum(r.delivered / r.wall_s for r in runs) / n,
        "cpu_cores": sum(r.cpu_s / r.wall_s for r in runs) / n,
        "cpu_ms_per_source_frame": 1000 * cpu_s / frames,
        # The share of one core a live camera of this footage costs (it delivers 1 s of video per second).
        "cpu_s_per_footage_s": cpu_s / sum(r.frames / rates[r.path] for r in runs),
    }


def _ratios(ingest: dict[str, float], limit: dict[str, float]) -> dict[str, float]:
    return {
        # <= 1: the share of pure decoding speed that ingestion keeps.
        "source_fps": ingest["source_fps"] / limit["source_fps"],
        # >= 1: CPU per source frame, with sampling and conversion, against decoding it alone.
        "cpu_per_source_frame": ingest["cpu_ms_per_source_frame"] / limit["cpu_ms_per_source_frame"],
    }


def summarise(reps: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase in ("limit", "ingest", "ratio", "ratio_by_stream"):
        out[phase] = {key: spread([rep[phase][key] for rep in reps]) for key in reps[0][phase]}
    return out


# --- Machine and run ------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "pyav": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
    }


def phase(pool: Any, mode: str, paths: Sequence[Path], seconds: float, fps: float) -> list[StreamRun]:
    start_at = time.time() + 0.3  # every stream starts together, after the pool has the jobs
    jobs = [(mode, str(p), start_at, seconds, fps) for p in paths]
    return list(pool.starmap(run_stream, jobs, chunksize=1))


def _by_footage(limit: Sequence[StreamRun], ingest: Sequence[StreamRun]) -> dict[str, float]:
    """Source fps ratio per stream: which footage (codec, size) ingestion finds dear."""
    return {
        f"{i}:{Path(a.path).name}": (b.frames / b.wall_s) / (a.frames / a.wall_s)
        for i, (a, b) in enumerate(zip(limit, ingest, strict=True))
    }


def repetitions(run: Callable[[str], list[StreamRun]], reps: int, rates: dict[str, float]) -> Iterator[dict[str, Any]]:
    for _ in range(reps):
        limit_runs, ingest_runs = run("limit"), run("ingest")
        limit, ingest = _per_stream(limit_runs, rates), _per_stream(ingest_runs, rates)
        by_footage = _by_footage(limit_runs, ingest_runs)
        yield {"limit": limit, "ingest": ingest, "ratio": _ratios(ingest, limit), "ratio_by_stream": by_footage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase and repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fps", type=float, default=2.0, help="analysis frames per second of footage")
    args = parser.parse_args()
    started = time.monotonic()
    paths = footage(args.streams)
    info = machine()
    rates = {str(p): frame_rate(p) for p in set(paths)}
    with multiprocessing.get_context("spawn").Pool(args.streams) as pool:
        reps = list(repetitions(lambda mode: phase(pool, mode, paths, args.seconds, args.fps), args.reps, rates))
    info["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "bench": "ingest",
        "what": f"{args.streams} simultaneous streams through detection.sources.iter_frames (realtime=False, "
        f"looped, sampled to {args.fps:g} fps, BGR at analysis resolution) vs plain PyAV decode of every frame",
        "config": {**vars(args), "footage": [str(p.relative_to(REPO.parent)) for p in paths]},
        "per_stream": summarise(reps),
        "machine": info,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
