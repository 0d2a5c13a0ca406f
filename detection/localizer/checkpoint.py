"""One-file checkpoints: weights, config, label map, version and training record, loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from detection.localizer.model import ArgusLocalizer, LocalizerConfig
from detection.localizer.scene import LAGS, MOTION_SIZE, SCENE_FPS, WINDOW, SceneHead

FORMAT = "argus-localizer"
FORMAT_VERSION = 1
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "argus-localizer.pt"


class CheckpointError(ValueError):
    """The file is not a usable localizer checkpoint (with the reason)."""


def save_checkpoint(
    model: ArgusLocalizer,
    path: Path,
    *,
    version: str,
    record: dict[str, Any],
    scene_head: SceneHead | None = None,
) -> None:
    """`record`: how it was trained (data, seed, epochs, metrics) - kept in the file and the model card.
    `scene_head`: the scene-level fight head (scene.py), stored with the features it was trained on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "config": model.config.to_dict(),
        "labels": {"classes": list(model.config.classes), "actions": list(model.config.actions)},
        "record": record,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if scene_head is not None:
        payload["scene_head"] = {**scene_head.to_dict(), **scene_features()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: Path | str | None = None) -> tuple[ArgusLocalizer, dict[str, Any]]:
    """The model in eval mode and the checkpoint's metadata (everything but the weights)."""
    path = Path(path) if path else DEFAULT_CHECKPOINT
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # noqa: BLE001  (torch raises many types for a corrupt file)
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    _check_header(payload, path)
    config = LocalizerConfig.from_dict(payload["config"])
    if list(config.classes) != payload["labels"]["classes"] or list(config.actions) != payload["labels"]["actions"]:
        raise CheckpointError(f"{path}: label map does not match its config")
    model = ArgusLocalizer(config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from exc
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    if "scene_head" in payload:
        meta["scene_head"] = _scene_head(payload["scene_head"], path)
    return model.eval(), meta


def scene_features() -> dict[str, Any]:
    """What the scene head's inputs are; a head trained on other features must not load."""
    return {"features": "motion", "lags": list(LAGS), "window": WINDOW, "fps": SCENE_FPS, "size": MOTION_SIZE}


def _scene_head(data: object, path: Path) -> SceneHead:
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: scene_head is not a mapping")
    expected = scene_features()
    stored = {k: data.get(k) for k in expected}
    if stored != expected:
        raise CheckpointError(f"{path}: scene head was trained on other features ({stored}, this code: {expected})")
    try:
        head = SceneHead.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: scene head is malformed: {exc}") from exc
    if head.weight.shape != (MOTION_SIZE,):
        raise CheckpointError(f"{path}: scene head has {head.weight.shape[0]} weights, expected {MOTION_SIZE}")
    return head


def _check_header(payload: object, path: Path) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    missing = {"config", "labels", "state_dict", "version"} - payload.keys()
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {sorted(missing)}")
