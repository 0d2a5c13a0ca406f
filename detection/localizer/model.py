"""The Argus localizer: a YOWO-style network written for streams.

Per frame (once, cached per camera): MobileNetV2 maps -> a 2D feature at stride 8 for the keyframe
and a compact "memory" at stride 16 (learned channels + pixel motion energy).
Per keyframe: a temporal branch over the last T memories, channel-attention fusion with the 2D
feature, and anchor-free heads at stride 8: actor-class centre heatmaps, box size + offset, and
multi-label action logits. Clips are causal: the keyframe is the newest frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from detection.localizer.backbone import IMAGENET_MEAN, IMAGENET_STD, TAP_CHANNELS, MobileNetV2Features
from detection.types import ACTIONS, ACTOR_CLASSES

STRIDE = 8  # heads' output stride
MEMORY_STRIDE = 16


@dataclass
class LocalizerConfig:
    input_height: int = 240  # letterboxed training canvas (multiple of 32)
    input_width: int = 320
    # Letterboxed canvas at inference. The network is fully convolutional, so it may differ from the
    # training canvas: trained on footage where people are large, it needs small people enlarged.
    infer_height: int = 384
    infer_width: int = 512
    # The least score of a detection that may start a track (the tracker's high_thresh): heatmap
    # peaks of this model run lower than a box detector's scores, so 0.5 drops real people. Chosen on
    # vtest.avi for v2.2 (best F1 against the teacher among 0.1-0.5); see the model card.
    track_start_score: float = 0.2
    clip_len: int = 8  # T: memories the temporal branch reads, newest last
    neck_channels: int = 64  # 2D branch width at stride 8
    memory_channels: int = 32  # learned channels kept per frame for the temporal branch
    temporal_channels: int = 64
    fused_channels: int = 96
    classes: tuple[str, ...] = field(default=ACTOR_CLASSES)
    actions: tuple[str, ...] = field(default=ACTIONS)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["classes"], data["actions"] = list(self.classes), list(self.actions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LocalizerConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "actions"):
            if key in known:
                known[key] = tuple(known[key])  # type: ignore[arg-type]
        return cls(**known)  # type: ignore[arg-type]


class FrameFeatures(NamedTuple):
    f2d: torch.Tensor  # (B, neck, H/8, W/8)
    memory: torch.Tensor  # (B, memory + 1, H/16, W/16): learned channels and motion energy
    gray: torch.Tensor  # (B, 1, H/4, W/4): this frame's small grey image, for the next frame's motion


class HeadOutputs(NamedTuple):
    heatmap: torch.Tensor  # (B, classes, H/8, W/8) logits of actor centres
    size: torch.Tensor  # (B, 4, H/8, W/8): log width, log height (in stride units), centre offset x, y
    actions: torch.Tensor  # (B, actions, H/8, W/8) logits


def _pw(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True))


def _dw_sep(channels: int, out: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise: the cheap spatial mixing used throughout the heads."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        _pw(channels, out),
    )


class Neck2D(nn.Module):
    """Top-down merge of the stride 32/16/8 maps into one stride-8 feature (FPN-lite)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        c8, c16, c32 = TAP_CHANNELS
        self.lat8, self.lat16, self.lat32 = _pw(c8, width), _pw(c16, width), _pw(c32, width)
        self.smooth16, self.smooth8 = _dw_sep(width, width), _dw_sep(width, width)

    def forward(self, s8: torch.Tensor, s16: torch.Tensor, s32: torch.Tensor) -> torch.Tensor:
        p16 = self.lat16(s16) + F.interpolate(self.lat32(s32), size=s16.shape[-2:], mode="nearest")
        p16 = self.smooth16(p16)
        p8 = self.lat8(s8) + F.interpolate(p16, size=s8.shape[-2:], mode="nearest")
        return self.smooth8(p8)


class TemporalBranch(nn.Module):
    """(B, T, C, h, w) memories -> (B, temporal, h, w): factorised temporal convs, then mean+max over T."""

    def __init__(self, inp: int, width: int) -> None:
        super().__init__()
        self.time1 = nn.Sequential(
            nn.Conv3d(2 * inp, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        self.space = nn.Sequential(
            nn.Conv3d(width, width, (1, 3, 3), padding=(0, 1, 1), groups=width, bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        self.time2 = nn.Sequential(
            nn.Conv3d(width, width, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        self.out = _pw(2 * width, width)

    def forward(self, memories: torch.Tensor) -> torch.Tensor:
        x = memories.transpose(1, 2)  # (B, C, T, h, w)
        # Frame-to-frame differences make motion explicit for the first temporal conv.
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
        x = self.time2(self.space(self.time1(torch.cat([x, diff], dim=1))))
        return self.out(torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1))


class ChannelAttentionFusion(nn.Module):
    """Concatenate 2D and temporal features, mix, and re-weight channels (squeeze-excitation)."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.mix = _pw(inp, out)
        self.attend = nn.Sequential(nn.Linear(out, out // 4), nn.ReLU(inplace=True), nn.Linear(out // 4, out))
        self.refine = _dw_sep(out, out)

    def forward(self, f2d: torch.Tensor, ftemp: torch.Tensor) -> torch.Tensor:
        x = self.mix(torch.cat([f2d, ftemp], dim=1))
        weights = torch.sigmoid(self.attend(x.mean(dim=(2, 3))))[:, :, None, None]
        return self.refine(x * weights)


class ArgusLocalizer(nn.Module):
    mean: torch.Tensor  # buffers, declared for the type checker
    std: torch.Tensor

    def __init__(self, config: LocalizerConfig, backbone: MobileNetV2Features | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone or MobileNetV2Features()
        self.neck = Neck2D(config.neck_channels)
        self.memory = _pw(TAP_CHANNELS[1], config.memory_channels)
        self.temporal = TemporalBranch(config.memory_channels + 1, config.temporal_channels)
        self.fusion = ChannelAttentionFusion(config.neck_channels + config.temporal_channels, config.fused_channels)
        width = config.fused_channels
        self.heatmap_head = nn.Sequential(_dw_sep(width, width), nn.Conv2d(width, len(config.classes), 1))
        self.size_head = nn.Sequential(_dw_sep(width, width), nn.Conv2d(width, 4, 1))
        self.action_head = nn.Sequential(_dw_sep(width, width), nn.Conv2d(width, len(config.actions), 1))
        # Centre logits start at a low prior (focal-loss practice): few cells hold an actor.
        nn.init.constant_(self.heatmap_head[-1].bias, -4.6)  # type: ignore[arg-type]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> ImageNet-normalised."""
        return (images - self.mean) / self.std

    def backbone_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.backbone(self.normalise(images))

    def frame_features(self, images: torch.Tensor, prev_gray: torch.Tensor | None) -> FrameFeatures:
        """Everything computed once per frame. prev_gray None: the stream's first frame (no motion)."""
        s8, s16, s32 = self.backbone_maps(images)
        gray = small_gray(images)
        return self.features_from_maps(s8, s16, s32, gray, prev_gray)

    def features_from_maps(
        self,
        s8: torch.Tensor,
        s16: torch.Tensor,
        s32: torch.Tensor,
        gray: torch.Tensor,
        prev_gray: torch.Tensor | None,
    ) -> FrameFeatures:
        motion = motion_energy(gray, prev_gray, s16.shape[-2:])
        memory = torch.cat([self.memory(s16), motion], dim=1)
        return FrameFeatures(self.neck(s8, s16, s32), memory, gray)

    def heads(self, f2d: torch.Tensor, memories: torch.Tensor) -> HeadOutputs:
        """f2d: (B, neck, H/8, W/8) of the keyframe; memories: (B, T, C, H/16, W/16), keyframe last."""
        fused = self.fused(f2d, memories)
        return HeadOutputs(self.heatmap_head(fused), self.size_head(fused), self.action_head(fused))

    def fused(self, f2d: torch.Tensor, memories: torch.Tensor) -> torch.Tensor:
        """The (B, fused, H/8, W/8) feature all three heads read."""
        ftemp = self.temporal(memories)
        ftemp = F.interpolate(ftemp, size=f2d.shape[-2:], mode="bilinear", align_corners=False)
        return self.fusion(f2d, ftemp)

    def forward(self, clips: torch.Tensor) -> HeadOutputs:
        """(B, T, 3, H, W) RGB [0, 1] clips, keyframe last -> head outputs for the keyframes.

        A clip may carry one extra, oldest frame (T + 1 frames): it is only the predecessor that gives
        the first memory its motion, as in a running stream. Without it the first frame shows none."""
        batch, length = clips.shape[:2]
        flat = clips.flatten(0, 1)
        gray = small_gray(flat).unflatten(0, (batch, length))
        prev = torch.cat([gray[:, :1], gray[:, :-1]], dim=1)
        if length == self.config.clip_len + 1:
            clips, gray, prev = clips[:, 1:], gray[:, 1:], prev[:, 1:]
            length -= 1
            flat = clips.flatten(0, 1)
        s8, s16, s32 = self.backbone_maps(flat)
        motion = motion_energy(gray.flatten(0, 1), prev.flatten(0, 1), s16.shape[-2:])
        memories = torch.cat([self.memory(s16), motion], dim=1).unflatten(0, (batch, length))
        key = slice(length - 1, None, length)  # the last frame of every clip
        f2d = self.neck(s8[key], s16[key], s32[key])
        return self.heads(f2d, memories)


def small_gray(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H/4, W/4) mean grey, the cheap input of the motion channel."""
    return F.avg_pool2d(images.mean(dim=1, keepdim=True), 4)


def motion_energy(gray: torch.Tensor, prev_gray: torch.Tensor | None, size: tuple[int, ...]) -> torch.Tensor:
    """Mean absolute grey change since the previous analysed frame, pooled to the memory grid (x4)."""
    if prev_gray is None:
        return gray.new_zeros((gray.shape[0], 1, *size))
    return F.adaptive_avg_pool2d((gray - prev_gray).abs(), (size[-2], size[-1])) * 4.0
