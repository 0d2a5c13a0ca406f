"""`python -m detection.train`: pseudo-label the footage, train the localizer, cross-validate the
fight head, write a checkpoint. Also `python manage.py train_localizer` (same options)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

from detection.localizer.checkpoint import DEFAULT_CHECKPOINT
from detection.localizer.training import TrainSettings, ava_sources, print_record, run

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m detection.train", description=__doc__)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="footage folder (default ../shared/data)")
    p.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to write")
    p.add_argument("--no-save", action="store_true", help="cross-validate only; write no checkpoint")
    p.add_argument(
        "--exclude",
        default="vtest,caviar",
        help="comma-separated sources left out (default: the footage we evaluate on)",
    )
    p.add_argument("--folds", type=int, default=5, help="fight cross-validation folds (0: skip)")
    p.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    p.add_argument("--cv-epochs", type=int, default=None, help="epochs per fold (default: --epochs)")
    p.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    p.add_argument("--lr", type=float, default=TrainSettings.lr)
    p.add_argument("--seed", type=int, default=TrainSettings.seed)
    p.add_argument(
        "--views-per-clip",
        type=int,
        default=TrainSettings.views_per_clip,
        help="views of each short clip (1 untransformed)",
    )
    p.add_argument(
        "--views-per-video",
        type=int,
        default=TrainSettings.views_per_video,
        help="views of each long single video such as bikes (1 untransformed)",
    )
    p.add_argument("--cache-dir", type=Path, default=Path("var/train-cache/labels"), help="pseudo-label cache")
    p.add_argument("--version", default="2.3", help="version stored in the checkpoint")
    p.add_argument(
        "--ava",
        nargs=2,
        metavar=("CSV", "VIDEO_DIR"),
        action="append",
        default=[],
        help="user-labelled clips: an AVA-style CSV and the folder of its videos (<video_id>.mp4); repeatable",
    )
    p.add_argument(
        "--student",
        type=Path,
        default=None,
        help="a checkpoint trained on the teacher's labels that refines them first (second-round labels)",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        raise SystemExit(f"error: footage folder {args.data} does not exist")
    if min(args.views_per_clip, args.views_per_video) < 1:
        raise SystemExit("error: --views-per-clip and --views-per-video must be at least 1 (the untransformed view)")
    if args.student is not None and not args.student.is_file():
        raise SystemExit(f"error: no such student checkpoint: {args.student}")
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        views_per_clip=args.views_per_clip,
        views_per_video=args.views_per_video,
    )
    extra = [s for csv_path, videos in args.ava for s in ava_sources(Path(csv_path), Path(videos), settings)]
    record = run(
        args.data,
        None if args.no_save else args.out,
        exclude=[x for x in args.exclude.split(",") if x],
        settings=settings,
        folds=args.folds,
        cache_dir=args.cache_dir,
        version=args.version,
        cv_epochs=args.cv_epochs,
        extra=extra,
        student=args.student,
    )
    print_record(record)


if __name__ == "__main__":
    main()
