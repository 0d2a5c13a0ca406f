"""Letterboxing: fit a frame into the network input keeping its aspect ratio, and map boxes back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

PAD_VALUE = 114  # grey padding, as in common detector practice


@dataclass(frozen=True, slots=True)
class Letterbox:
    scale: float  # network pixels per source pixel
    pad_x: float
    pad_y: float
    src_width: int
    src_height: int

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) boxes in network pixels -> source pixels, clipped to the frame."""
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.src_width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.src_height)
        return out

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * self.scale + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.scale + self.pad_y
        return out


def fit_letterbox(
    src_width: int,
    src_height: int,
    width: int,
    height: int,
    *,
    zoom: float = 1.0,
    shift: tuple[float, float] = (0.5, 0.5),
) -> Letterbox:
    """The transform that fits the source into width x height; zoom < 1 shrinks it further (training
    augmentation), shift places it (0..1 of the free space; 0.5 centres it)."""
    scale = min(width / src_width, height / src_height) * zoom
    free_x, free_y = width - src_width * scale, height - src_height * scale
    return Letterbox(scale, free_x * shift[0], free_y * shift[1], src_width, src_height)


def apply_letterbox(image: np.ndarray, box: Letterbox, width: int, height: int) -> np.ndarray:
    """The (height, width, 3) network image of a BGR frame under `box` (an affine warp: one resize)."""
    matrix = np.array([[box.scale, 0, box.pad_x], [0, box.scale, box.pad_y]], dtype=np.float32)
    interpolation = cv2.INTER_AREA if box.scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(PAD_VALUE,) * 3,
    )


def to_tensor_rgb(images: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 (H, W, 3) frames -> (B, 3, H, W) float32 RGB in [0, 1]."""
    batch = np.stack(images)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / 255.0


def rgb_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """The same frames as `to_tensor_rgb`, as a tensor stored channels-last (B, H, W, 3 in memory):
    the layout of the backend's convolutions, made without a transposing copy (the stream's input)."""
    rgb = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images])
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(255.0)
