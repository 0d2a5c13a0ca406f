"""Training of the localizer: labels, cached views, the loop, fight cross-validation, checkpoint."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import pickle
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from detection.localizer.ava import find_video, labels_from_ava, video_ids
from detection.localizer.backbone import pretrained_backbone
from detection.localizer.checkpoint import load_checkpoint, save_checkpoint
from detection.localizer.data import FeatureCache, View, add_views, progress
from detection.localizer.decode import decode
from detection.localizer.losses import build_targets, localizer_loss
from detection.localizer.model import ArgusLocalizer, HeadOutputs, LocalizerConfig, motion_energy
from detection.localizer.pseudo import Teacher, VideoLabels, label_video, ssdlite_teacher
from detection.localizer.refine import refine_all
from detection.localizer.scene import MAP_TOP_K, map_fighting
from detection.localizer.scene_training import add_scene_head

log = logging.getLogger(__name__)

LABELS_VERSION = 4  # bump when pseudo-labelling changes: cached labels are then rebuilt


@dataclass(frozen=True)
class Source:
    path: Path
    group: str  # fold unit: one clip / one video
    clip_label: str | None
    find_vehicles: bool
    views: int
    ava_csv: Path | None = None  # user-labelled: labels come from this CSV, not from the teacher


@dataclass
class TrainSettings:
    epochs: int = 6
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    views_per_clip: int = 3  # 1 untransformed + 2 augmented (since v2.2; 2 before)
    views_per_video: int = 4  # long single videos (bikes) get more augmented views


def discover_sources(data_dir: Path, exclude: Sequence[str], settings: TrainSettings) -> list[Source]:
    """The real footage of ../shared/data: fight clips with their labels, and the single videos not
    excluded (vtest and CAVIAR are excluded by default: they are what the model is evaluated on)."""
    sources: list[Source] = []
    labels_csv = data_dir / "fight" / "labels.csv"
    if labels_csv.is_file() and "fight" not in exclude:
        with labels_csv.open() as f:
            for row in csv.DictReader(f):
                path = data_dir / "fight" / row["path"]
                sources.append(Source(path, path.stem, row["label"], False, settings.views_per_clip))
    singles = {
        "bikes": data_dir / "bikes.mp4",
        "vtest": data_dir / "vtest.avi",
        "caviar": data_dir / "caviar" / "OneStopEnter1front_h264.mp4",
    }
    for name, path in singles.items():
        if name not in exclude and path.is_file():
            sources.append(Source(path, name, None, name == "bikes", settings.views_per_video))
    return sources


def ava_sources(csv_path: Path, videos: Path, settings: TrainSettings) -> list[Source]:
    """User-labelled clips: every video of an AVA-style CSV, found in `videos` by its id."""
    return [
        Source(find_video(videos, vid), vid, None, False, settings.views_per_clip, ava_csv=csv_path)
        for vid in video_ids(csv_path)
    ]


def load_labels(sources: Sequence[Source], cache_dir: Path, teacher: Teacher | None = None) -> list[VideoLabels]:
    """Pseudo-labels per source, cached on disk by file identity (the teacher is slow)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: list[VideoLabels] = []
    for i, source in enumerate(sources):
        if source.ava_csv is not None:
            out.append(labels_from_ava(source.ava_csv, source.path, source.group))
            progress(i + 1, len(sources), "labelling")
            continue
        stat = source.path.stat()
        key = hashlib.sha1(
            f"{LABELS_VERSION}:{source.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:"
            f"{source.clip_label}:{source.find_vehicles}".encode(),
            usedforsecurity=False,
        ).hexdigest()[:16]
        cached = cache_dir / f"{source.path.stem}-{key}.pkl"
        if cached.is_file():
            out.append(pickle.loads(cached.read_bytes()))  # noqa: S301  (our own cache)
        else:
            teacher = teacher or ssdlite_teacher()
            labels = label_video(source.path, teacher, clip_label=source.clip_label, find_vehicles=source.find_vehicles)
            cached.write_bytes(pickle.dumps(labels))
            out.append(labels)
        progress(i + 1, len(sources), "labelling")
    return out


def build_cache(
    model: ArgusLocalizer, sources: Sequence[Source], labels: Sequence[VideoLabels], seed: int
) -> FeatureCache:
    cache = FeatureCache()
    rng = np.random.default_rng(seed)
    for i, (source, video) in enumerate(zip(sources, labels, strict=True)):
        add_views(cache, model, video, source.group, n_views=source.views, rng=rng)
        progress(i + 1, len(sources), "caching backbone maps")
    cache.freeze()
    return cache


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def fresh_model(config: LocalizerConfig) -> ArgusLocalizer:
    model = ArgusLocalizer(config, pretrained_backbone())
    for p in model.backbone.parameters():
        p.requires_grad_(False)  # frozen: its maps are cached
    return model


def clip_rows(view: View, pos: int, step: int, length: int) -> tuple[list[int], list[int]]:
    """Cache rows of a causal clip ending at `pos` (oldest first) and of each frame's predecessor."""
    positions = [max(0, pos - step * (length - 1 - k)) for k in range(length)]
    return [view.start + p for p in positions], [view.start + max(0, p - step) for p in positions]


def forward_cached(model: ArgusLocalizer, cache: FeatureCache, items: Sequence[tuple[View, int, int]]) -> HeadOutputs:
    t = cache.tensors
    length = model.config.clip_len
    rows, prev = zip(*(clip_rows(v, p, s, length) for v, p, s in items), strict=True)
    flat_rows = torch.tensor([r for rs in rows for r in rs])
    flat_prev = torch.tensor([r for rs in prev for r in rs])
    s16 = t["s16"][flat_rows].float()
    motion = motion_energy(t["gray"][flat_rows].float(), t["gray"][flat_prev].float(), s16.shape[-2:])
    memories = torch.cat([model.memory(s16), motion], dim=1).unflatten(0, (len(items), length))
    key = torch.tensor([v.start + p for v, p, _ in items])
    f2d = model.neck(t["s8"][key].float(), t["s16"][key].float(), t["s32"][key].float())
    return model.heads(f2d, memories)


def train(
    model: ArgusLocalizer, cache: FeatureCache, views: Sequence[View], settings: TrainSettings, *, label: str = "train"
) -> dict[str, float]:
    cfg = model.config
    samples = [(v, p) for v in views for p in range(v.count)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.epochs * max(1, len(samples) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=steps, pct_start=0.1)
    rng = random.Random(settings.seed)  # noqa: S311  (sample order, not secrets)
    fight = cfg.actions.index("fighting")
    grid = (cfg.input_height // 8, cfg.input_width // 8)
    model.train()
    model.backbone.eval()  # frozen statistics
    step, started = 0, time.monotonic()
    running: dict[str, float] = {}
    for _epoch in range(settings.epochs):
        rng.shuffle(samples)
        for i in range(0, len(samples) - settings.batch_size + 1, settings.batch_size):
            batch = samples[i : i + settings.batch_size]
            items = [(v, p, rng.choice((1, 1, 2))) for v, p in batch]
            targets = build_targets([v.targets[p] for v, p in batch], len(cfg.classes), len(cfg.actions), grid)
            clip_labels = torch.tensor([v.clip_label for v, _ in batch])
            losses = localizer_loss(forward_cached(model, cache, items), targets, clip_labels, fight)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            schedule.step()
            step += 1
            for k, v in losses.items():
                running[k] = 0.95 * running.get(k, float(v.detach())) + 0.05 * float(v.detach())
            if step % 20 == 0 or step == steps:
                rate = step / (time.monotonic() - started)
                shown = " ".join(f"{k}={v:.3f}" for k, v in running.items())
                sys.stderr.write(
                    f"\r{label}: step {step}/{steps} {shown} ({rate:.1f} steps/s, ETA {(steps - step) / rate:.0f}s)   "
                )
                sys.stderr.flush()
    sys.stderr.write("\n")
    model.eval()
    return running


CLIP_SCORES = ("score_x_fighting", "fighting_of_actors", "scene_fighting")
# The clip score the model card reports, chosen before any fold ran (the others for comparison).
# Live cameras do not use it: their rules read each tube's own fighting score.
PRODUCT_SCORE = "scene_fighting"


@torch.inference_mode()
def frame_fight_values(
    model: ArgusLocalizer, cache: FeatureCache, view: View, *, min_score: float
) -> list[tuple[float, float, float]]:
    """Per analysed frame of a view: the highest actor score x fighting probability, the highest
    fighting probability of an actor scored at least `min_score` (0 and 0: no actor), and the
    scene-level fighting value of the map (`scene_fighting`)."""
    fight = model.config.actions.index("fighting")
    person = model.config.classes.index("person")
    out = forward_cached(model, cache, [(view, p, 1) for p in range(view.count)])
    values = []
    scene = map_fighting(out.actions, fight)
    for actors, scene_value in zip(decode(out, min_score=min(min_score, 0.1)), scene, strict=True):
        people = [a for a in actors if a.class_index == person]
        product = max((a.score * float(a.actions[fight]) for a in people), default=0.0)
        given = max((float(a.actions[fight]) for a in people if a.score >= min_score), default=0.0)
        values.append((product, given, scene_value))
    return values


def clip_score(values: Sequence[float], top_share: float = 0.25) -> float:
    """Mean of the top quarter of per-frame values: a fight is brief but more than one frame."""
    if not values:
        return 0.0
    ordered = sorted(values, reverse=True)
    return float(np.mean(ordered[: max(1, round(len(ordered) * top_share))]))


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return float(wins / (len(pos) * len(neg)))


def fight_folds(views: Sequence[View], k: int, seed: int) -> list[set[str]]:
    """Stratified folds of the fight/no-fight clips (by group), deterministic for a seed."""
    groups = sorted({(v.group, v.clip_label) for v in views if v.group.startswith(("fi", "nofi"))})
    rng = random.Random(seed)  # noqa: S311  (fold assignment, not secrets)
    folds: list[set[str]] = [set() for _ in range(k)]
    for label in (1.0, 0.0):
        names = sorted(g for g, y in groups if y == label)
        rng.shuffle(names)
        for i, name in enumerate(names):
            folds[i % k].add(name)
    return folds


def cross_validate(
    config: LocalizerConfig,
    cache: FeatureCache,
    settings: TrainSettings,
    k: int,
    min_score: float,
    save_dir: Path | None = None,
) -> dict[str, object]:
    """Train k models, each without one fold of the fight clips, and score that fold's clips.
    Fold models are kept in `save_dir` (with their held-out clips) for checks with `localize`."""
    folds = fight_folds(cache.views, k, settings.seed)
    scores: dict[str, dict[str, float]] = {name: {} for name in CLIP_SCORES}
    labels: dict[str, int] = {}
    per_fold: dict[str, list[float]] = {name: [] for name in scores}
    for i, held_out in enumerate(folds):
        seed_everything(settings.seed + i)
        model = fresh_model(config)
        train_views = [v for v in cache.views if v.group not in held_out]
        train(model, cache, train_views, settings, label=f"fold {i + 1}/{k}")
        if save_dir is not None:
            record = {"fold": i + 1, "folds": k, "held_out": sorted(held_out), "settings": settings.__dict__}
            save_checkpoint(model, save_dir / f"fold{i + 1}.pt", version=f"fold{i + 1}", record=record)
        held_views = [v for v in cache.views if v.group in held_out and v.identity]
        for view in held_views:
            values = frame_fight_values(model, cache, view, min_score=min_score)
            for j, name in enumerate(CLIP_SCORES):
                scores[name][view.group] = clip_score([frame[j] for frame in values])
            labels[view.group] = int(view.clip_label)
        for name, by_group in scores.items():
            fold = [v.group for v in held_views]
            per_fold[name].append(round(roc_auc([by_group[g] for g in fold], [labels[g] for g in fold]), 4))
        shown = ", ".join(f"{name} {aucs[-1]:.3f}" for name, aucs in per_fold.items())
        log.info("fold %d AUC: %s", i + 1, shown)
        sys.stderr.write(f"fold {i + 1}/{k}: AUC {shown}\n")
    names = sorted(labels)
    truth = [labels[n] for n in names]
    result: dict[str, object] = {
        "folds": k,
        "clips": len(names),
        "min_actor_score": min_score,
        "product_score": PRODUCT_SCORE,
        "scene_top_k": MAP_TOP_K,
    }
    for name, by_group in scores.items():
        clip_scores = [by_group[n] for n in names]
        accuracy = float(np.mean([(v >= 0.5) == bool(y) for v, y in zip(clip_scores, truth, strict=True)]))
        result[name] = {
            "auc_per_fold": per_fold[name],
            "auc_mean_of_folds": round(float(np.mean(per_fold[name])), 4),
            "auc_pooled": round(roc_auc(clip_scores, truth), 4),
            "accuracy_at_0.5": round(accuracy, 4),
            "scores": {n: round(by_group[n], 4) for n in names},
        }
    return result


def run(
    data_dir: Path,
    out: Path | None,
    *,
    exclude: Sequence[str],
    settings: TrainSettings,
    folds: int,
    cache_dir: Path,
    version: str,
    min_score: float = 0.3,
    cv_epochs: int | None = None,
    extra: Sequence[Source] = (),
    student: Path | None = None,
) -> dict[str, object]:
    """Train and cross-validate (see the module); `student`: a checkpoint trained on the teacher's
    labels that refines them first (refine.py), cached beside the labels."""
    seed_everything(settings.seed)
    config = LocalizerConfig()
    sources = discover_sources(data_dir, exclude, settings) + list(extra)
    if not sources:
        raise SystemExit(f"error: no training footage under {data_dir} and no --ava clips")
    labels = load_labels(sources, cache_dir)
    refined = None
    if student is not None:
        user_labelled = [s.ava_csv is not None for s in sources]
        refined = refine_all(labels, student, cache_dir.parent / "student", skip=user_labelled)
        labels = refined.labels
    cache = build_cache(fresh_model(config), sources, labels, settings.seed)
    sys.stderr.write(f"cache: {len(cache.views)} views, {cache.rows} frames, {cache.nbytes() / 2**30:.2f} GiB\n")
    record: dict[str, object] = {
        "trained_on": sorted({s.path.parent.name if s.clip_label else s.group for s in sources}),
        "excluded": list(exclude),
        "clips": len(sources),
        "frames": cache.rows,
        "settings": settings.__dict__,
        "labels_version": LABELS_VERSION,
    }
    if refined is not None:
        record["student"] = refined.record
    # The final model first, so it can be evaluated while the folds train; saved again with them.
    model = None
    if out is not None:
        seed_everything(settings.seed)
        model = fresh_model(config)
        losses = train(model, cache, cache.views, settings, label="final")
        record["final_losses"] = {k: round(v, 4) for k, v in losses.items()}
        save_checkpoint(model, out, version=version, record=record)
    if folds > 1:
        cv_settings = replace(settings, epochs=cv_epochs or settings.epochs)
        record["cv_epochs"] = cv_settings.epochs  # `settings` are the final model's
        save_dir = out.parent / f"{out.stem}-folds" if out is not None else None
        record["fight_cv"] = cross_validate(config, cache, cv_settings, folds, min_score, save_dir)
        if model is not None and out is not None:
            save_checkpoint(model, out, version=version, record=record)
    if any(s.clip_label for s in sources):
        scene_cache = cache_dir.parent / "scene"
        add_scene_heads(model or fresh_model(config), record, data_dir, settings.seed, folds, out, version, scene_cache)
    return record


def add_scene_heads(
    model: ArgusLocalizer,
    record: dict[str, object],
    data_dir: Path,
    seed: int,
    folds: int,
    out: Path | None,
    version: str,
    cache_dir: Path,
) -> None:
    """The scene fight head (scene_training.py), cross-validated on the folds just run; the final
    checkpoint gets the head of every clip, each fold checkpoint the head of its own training clips."""
    scene = add_scene_head(
        model, record, data_dir, seed=seed, folds=folds, progress=_scene_progress, cache_dir=cache_dir
    )
    record["scene_cv"] = scene.record
    if out is None:
        return
    save_checkpoint(model, out, version=version, record=record, scene_head=scene.head)
    for i, head in enumerate(scene.fold_heads):
        path = out.parent / f"{out.stem}-folds" / f"fold{i + 1}.pt"
        fold_model, meta = load_checkpoint(path)
        save_checkpoint(fold_model, path, version=str(meta["version"]), record=meta["record"], scene_head=head)


def _scene_progress(done: int, total: int) -> None:
    progress(done, total, "scene features")


def print_record(record: dict[str, object]) -> None:
    shown = dict(record)
    cv = shown.get("fight_cv")
    if isinstance(cv, dict):  # per-clip scores stay in the checkpoint's record, not on screen
        shown["fight_cv"] = {
            k: {kk: vv for kk, vv in v.items() if kk != "scores"} if isinstance(v, dict) else v for k, v in cv.items()
        }
    print(json.dumps(shown, indent=2, default=str))
