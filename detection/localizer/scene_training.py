"""Train and cross-validate the scene fight head (scene.py) on the fight clips.

Its features come from the frozen backbone, the same in every fold model and in the final one, so
they are computed once per clip (and once more mirrored, for training) at the inference canvas, as
the backend computes them. The head is then cross-validated on the folds of the localizer's own
cross-validation, alone and averaged with the localizer's out-of-fold `scene_fighting` clip scores:
that average is the clip score the model card reports.

    python -m detection.localizer.scene_training --checkpoint IN.pt --out OUT.pt
adds (or retrains) the head of an existing checkpoint; `python -m detection.train` does it too.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from detection.localizer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, scene_features
from detection.localizer.geometry import apply_letterbox, fit_letterbox, rgb_tensor
from detection.localizer.inference import inference_model
from detection.localizer.model import ArgusLocalizer, small_gray
from detection.localizer.pseudo import read_frames, video_fps
from detection.localizer.scene import SCENE_FPS, ClipWindows, SceneHead, auc, clip_scores, clip_windows, train_head

log = logging.getLogger(__name__)

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # ../shared/data of the repository
DEFAULT_CACHE = Path("var/train-cache/scene")
BATCH = 4  # frames per backbone forward

Progress = Callable[[int, int], None]


def fight_clips(data_dir: Path) -> list[tuple[Path, int]]:
    """(video, 1 fight / 0 no fight) for every row of the fight dataset's labels.csv."""
    labels = data_dir / "fight" / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels}: no fight labels (the scene head trains on the fight clips)")
    with labels.open() as f:
        return [(data_dir / "fight" / row["path"], int(row["label"] == "fight")) for row in csv.DictReader(f)]


def scene_frames(path: Path) -> list[np.ndarray]:
    """The clip's frames about SCENE_FPS a second, as a stream analysed at its own rate scores them."""
    return [image for _, _, image in read_frames(path, max(1, round(video_fps(path) / SCENE_FPS)))]


@torch.inference_mode()
def clip_views(model: ArgusLocalizer, frames: Sequence[np.ndarray], group: str, label: int) -> list[ClipWindows]:
    """The windows of a clip and of its mirror image (the mirror only trains, it is not scored)."""
    cfg = model.config
    box = fit_letterbox(frames[0].shape[1], frames[0].shape[0], cfg.infer_width, cfg.infer_height)
    canvases = [apply_letterbox(f, box, cfg.infer_width, cfg.infer_height) for f in frames]
    views = []
    for mirrored in (False, True):
        shown = [np.ascontiguousarray(c[:, ::-1]) for c in canvases] if mirrored else canvases
        maps, greys = [], []
        # A few frames at a time: full-canvas activations of a whole clip are hundreds of MB a layer,
        # and allocating those afresh (page faults) cost more than the convolutions.
        for i in range(0, len(shown), BATCH):
            images = rgb_tensor(shown[i : i + BATCH])
            maps.append(model.backbone_maps(images)[1].float())
            greys.append(small_gray(images).float())
        windows = clip_windows(torch.cat(maps), torch.cat(greys))
        views.append(ClipWindows(group, label, not mirrored, windows))
    return views


def extract(
    model: ArgusLocalizer,
    clips: Sequence[tuple[Path, int]],
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> list[ClipWindows]:
    """The windows of every clip and of its mirror. With `cache_dir`, each clip's windows are kept
    there as they are made, so a second run (or one after an interruption) reads them back."""
    fast = inference_model(model, torch.device("cpu"))
    out: list[ClipWindows] = []
    for i, (path, label) in enumerate(clips):
        cached = cache_dir / f"{path.stem}-{_feature_key(path, model)}.npz" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            with np.load(cached) as data:
                windows = [data["identity"], data["mirrored"]]
        else:
            frames = scene_frames(path)
            if not frames:
                raise ValueError(f"{path}: no decodable frame")
            windows = [v.windows for v in clip_views(fast, frames, path.stem, label)]
            if cached is not None:
                _save_windows(cached, windows)
        out += [ClipWindows(path.stem, label, True, windows[0]), ClipWindows(path.stem, label, False, windows[1])]
        if progress is not None:
            progress(i + 1, len(clips))
    return out


def _feature_key(path: Path, model: ArgusLocalizer) -> str:
    """Changes with the clip file, the canvas and the feature definition (not with the heads)."""
    stat = path.stat()
    cfg = model.config
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{cfg.infer_width}x{cfg.infer_height}|{scene_features()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_windows(path: Path, windows: Sequence[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, identity=windows[0], mirrored=windows[1])
    tmp.replace(path)  # a cache file is whole or absent


def fold_groups(clips: Sequence[ClipWindows], k: int, seed: int) -> list[set[str]]:
    """The folds of the localizer's cross-validation for the same seed (training.fight_folds)."""
    from detection.localizer.training import fight_folds

    views = [SimpleNamespace(group=c.group, clip_label=float(c.label)) for c in clips if c.identity]
    return fight_folds(views, k, seed)  # type: ignore[arg-type]


def cross_validate(
    clips: Sequence[ClipWindows], k: int, seed: int, map_scores: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """AUC per fold of the head alone and, given the localizer's out-of-fold clip scores
    (`scene_fighting`), of their mean (`scene_combined`)."""
    return cross_validate_heads(clips, k, seed, map_scores)[0]


def cross_validate_heads(
    clips: Sequence[ClipWindows], k: int, seed: int, map_scores: Mapping[str, float] | None = None
) -> tuple[dict[str, Any], list[SceneHead]]:
    """`cross_validate`, and the head of each fold (trained without that fold's clips)."""
    labels = {c.group: c.label for c in clips}
    head_scores: dict[str, float] = {}
    per_fold: dict[str, list[float]] = {"scene_head": [], "scene_combined": []}
    heads = []
    for held in fold_groups(clips, k, seed):
        head = train_head([c for c in clips if c.group not in held], seed=seed)
        heads.append(head)
        scores = clip_scores(head, [c for c in clips if c.group in held])
        head_scores.update(scores)
        groups = sorted(scores)
        truth = [labels[g] for g in groups]
        per_fold["scene_head"].append(round(auc([scores[g] for g in groups], truth), 4))
        if map_scores is not None:
            combined = [(scores[g] + map_scores[g]) / 2 for g in groups]
            per_fold["scene_combined"].append(round(auc(combined, truth), 4))
    result: dict[str, Any] = {"folds": k, "seed": seed, "c_per_fold": [h.c for h in heads]}
    by_name = {"scene_head": head_scores}
    if map_scores is not None:
        by_name["scene_combined"] = {g: (s + map_scores[g]) / 2 for g, s in head_scores.items()}
    for name, scores in by_name.items():
        groups = sorted(scores)
        truth = [labels[g] for g in groups]
        values = [scores[g] for g in groups]
        result[name] = {
            "auc_per_fold": per_fold[name],
            "auc_mean_of_folds": round(float(np.mean(per_fold[name])), 4),
            "auc_pooled": round(auc(values, truth), 4),
            "accuracy_at_0.5": round(
                float(np.mean([(v >= 0.5) == bool(y) for v, y in zip(values, truth, strict=True)])), 4
            ),
            "scores": {g: round(scores[g], 4) for g in groups},
        }
    return result, heads


def accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> float:
    return float(np.mean([(s >= threshold) == bool(y) for s, y in zip(scores, labels, strict=True)]))


def without_scores(result: Mapping[str, Any]) -> dict[str, Any]:
    """A cross-validation result without its per-clip scores (those stay in the checkpoint)."""
    return {
        k: {kk: vv for kk, vv in v.items() if kk != "scores"} if isinstance(v, dict) else v for k, v in result.items()
    }


def localizer_map_scores(record: Mapping[str, Any]) -> dict[str, float] | None:
    """The out-of-fold `scene_fighting` clip scores of a checkpoint's record, if it has them."""
    cv = record.get("fight_cv")
    if not isinstance(cv, dict) or not isinstance(cv.get("scene_fighting"), dict):
        return None
    return {str(g): float(v) for g, v in cv["scene_fighting"]["scores"].items()}


@dataclass
class SceneTraining:
    head: SceneHead  # trained on every clip
    record: dict[str, Any]  # the cross-validation, for the checkpoint's record
    fold_heads: list[SceneHead]  # fold i's head never saw fold i's clips (empty without folds)


def add_scene_head(
    model: ArgusLocalizer,
    record: dict[str, Any],
    data_dir: Path,
    *,
    seed: int,
    folds: int,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> SceneTraining:
    """Features of every fight clip (kept in `cache_dir`), the head's cross-validation (on the
    record's folds when it has them), then the head trained on every clip."""
    started = time.monotonic()
    clips = extract(model, fight_clips(data_dir), progress, cache_dir)
    cv_record = record.get("fight_cv")
    k = int(cv_record.get("folds") or folds) if isinstance(cv_record, dict) else folds
    result: dict[str, Any] = {}
    fold_heads: list[SceneHead] = []
    if k > 1:
        result, fold_heads = cross_validate_heads(clips, k, seed, localizer_map_scores(record))
        log.info("scene cross-validation: %s", json.dumps(without_scores(result)))
    head = train_head(clips, seed=seed)
    result["final_c"] = head.c
    result["seconds"] = round(time.monotonic() - started, 1)
    return SceneTraining(head, result, fold_heads)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detection.localizer.scene_training",
        description="Add (or retrain) the scene fight head of a localizer checkpoint on the fight clips.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="the localizer checkpoint to start from")
    p.add_argument("--out", type=Path, required=True, help="the checkpoint to write (may be --checkpoint)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="footage folder with fight/labels.csv")
    p.add_argument("--version", default=None, help="version stored in the output (default: the input's)")
    p.add_argument("--seed", type=int, default=None, help="fold seed (default: the record's training seed)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds when the record has none")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where each clip's features are kept")
    return p


def _bar(done: int, total: int) -> None:
    sys.stderr.write(f"\rscene features: {done}/{total} clips")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        model, meta = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f"scene_training: error: {exc}", file=sys.stderr)
        return 2
    record = dict(meta.get("record") or {})
    settings = record.get("settings")
    seed = args.seed if args.seed is not None else int(settings.get("seed", 0) if isinstance(settings, dict) else 0)
    try:
        trained = add_scene_head(
            model, record, args.data, seed=seed, folds=args.folds, progress=_bar, cache_dir=args.cache_dir
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"scene_training: error: {exc}", file=sys.stderr)
        return 2
    record["scene_cv"] = trained.record
    version = args.version or str(meta["version"])
    save_checkpoint(model, args.out, version=version, record=record, scene_head=trained.head)
    print(json.dumps(without_scores(trained.record), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
