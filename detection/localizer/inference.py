"""The copy of a trained localizer that the backend runs: same outputs (up to float rounding), less CPU.

Three rewrites, each measured on the 2-core CPU at 512x384 (vtest frames):
- batch-norms folded into the convolutions before them (about a tenth of a frame);
- convolution weights stored channels-last (NHWC), the layout oneDNN's CPU kernels work in: in the
  default layout every convolution reorders its input and output (the bare backbone ran 2.7 times
  faster);
- the temporal branch rewritten for that layout (`ChannelsLastTemporal`): 3.7 ms a frame -> about 2.2;
- the size and action heads evaluated only at the heatmap's peaks (`CellHeads`), the only cells
  decoding reads: at most 64 of the 3,072 cells of a 512x384 frame.
"""

from __future__ import annotations

import copy
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from detection.localizer.model import ArgusLocalizer, TemporalBranch

_CONVS = (nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)


def fuse_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of `model` (in eval mode) with every batch-norm that follows a convolution in a
    Sequential folded into that convolution's weights: inference never updates the statistics."""
    fused = copy.deepcopy(model).eval()
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, norm = seq[i], seq[i + 1]
            if isinstance(conv, _CONVS) and isinstance(norm, _NORMS):
                seq[i] = fuse_conv_bn_eval(conv, norm)
                seq[i + 1] = nn.Identity()
    return fused


def to_channels_last(model: nn.Module) -> nn.Module:
    """`model` with every convolution module's weights stored channels-last, in place."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(module, nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def _conv2d_from(conv: nn.Conv3d, kernel: torch.Tensor, **options: object) -> nn.Conv2d:
    """A Conv2d holding `kernel` (out, in/groups, kh, kw) and the bias of `conv`."""
    out, per_group, kh, kw = kernel.shape
    groups = conv.groups
    flat = nn.Conv2d(per_group * groups, out, (kh, kw), bias=conv.bias is not None, groups=groups, **options)  # type: ignore[arg-type]
    flat.weight.data = kernel.detach().clone()
    if conv.bias is not None:
        flat.bias.data = conv.bias.detach().clone()  # type: ignore[union-attr]
    return flat.requires_grad_(False)


def _time_conv(conv: nn.Conv3d) -> nn.Conv2d:
    """A (k, 1, 1) Conv3d over (B, C, T, h, w) as a (k, 1) Conv2d over (B, C, T, h*w)."""
    t_pad = cast(tuple[int, ...], conv.padding)[0]
    return _conv2d_from(conv, conv.weight[..., 0], stride=(conv.stride[0], 1), padding=(t_pad, 0))


def _space_conv(conv: nn.Conv3d) -> nn.Conv2d:
    """A (1, k, k) Conv3d over (B, C, T, h, w) as a k x k Conv2d over every frame (B*T, C, h, w)."""
    padding = cast(tuple[int, ...], conv.padding)[1:]
    return _conv2d_from(conv, conv.weight[:, :, 0], padding=padding)


class ChannelsLastTemporal(nn.Module):
    """TemporalBranch (batch-norms folded) computed with every tensor physically (B, T, h, w, C).

    PyTorch's CPU build has no fast kernel for the branch's 3D convolutions, and its default layout
    put a reorder around each of them. Here each one is a 2D convolution over a channels-last view:
    time convolutions over (B, C, T, h*w), the depthwise spatial one over the frames (B*T, C, h, w);
    views between them are free (no copies)."""

    def __init__(self, branch: TemporalBranch) -> None:
        super().__init__()
        convs = [cast(nn.Conv3d, seq[0]) for seq in (branch.time1, branch.space, branch.time2)]
        if any(isinstance(seq[1], _NORMS) for seq in (branch.time1, branch.space, branch.time2, branch.out)):
            raise ValueError("fold the batch-norms first (fuse_batch_norms)")
        self.time1, self.space, self.time2 = _time_conv(convs[0]), _space_conv(convs[1]), _time_conv(convs[2])
        self.out = cast(nn.Conv2d, branch.out[0])
        to_channels_last(self)

    def forward(self, memories: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) memories, newest last -> (B, temporal, h, w), channels-last."""
        batch, _, _, height, width = memories.shape
        x = memories.permute(0, 1, 3, 4, 2)  # (B, T, h, w, C)
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        x = torch.cat([x, diff], dim=-1)
        x = self._over_time(self.time1, x)
        frames = x.flatten(0, 1).permute(0, 3, 1, 2)  # (B*T, C, h, w), channels-last
        x = self.space(frames).relu_().permute(0, 2, 3, 1).unflatten(0, (batch, -1))
        x = self._over_time(self.time2, x)
        pooled = torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=-1)  # (B, h, w, 2C)
        return self.out(pooled.permute(0, 3, 1, 2)).relu_()

    @staticmethod
    def _over_time(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """(B, T, h, w, C) -> (B, T', h, w, C'): `conv` slides over T only."""
        batch, _, height, width, channels = x.shape
        grid = x.reshape(batch, -1, height * width, channels).permute(0, 3, 1, 2)  # (B, C, T, h*w)
        out = conv(grid).relu_().permute(0, 2, 3, 1)  # (B, T', h*w, C')
        return out.unflatten(2, (height, width))


class _CellHead(NamedTuple):
    """One head (depthwise 3x3, ReLU, 1x1, ReLU, 1x1; batch-norms folded) as plain weights."""

    depthwise: torch.Tensor  # (C, 9)
    depthwise_bias: torch.Tensor  # (C,)
    pointwise: torch.Tensor  # (C, C)
    pointwise_bias: torch.Tensor
    out: torch.Tensor  # (n, C)
    out_bias: torch.Tensor

    @classmethod
    def of(cls, head: nn.Module) -> _CellHead:
        block, last = cast(nn.Sequential, head)
        norm = cast(nn.Sequential, block)[1]
        if not isinstance(norm, nn.Identity):
            raise ValueError("fold the batch-norms first (fuse_batch_norms)")
        dw = cast(nn.Conv2d, cast(nn.Sequential, block)[0])
        pw = cast(nn.Conv2d, cast(nn.Sequential, cast(nn.Sequential, block)[3])[0])
        if dw.kernel_size != (3, 3) or dw.groups != dw.in_channels or dw.padding != (1, 1):
            raise ValueError(f"a head starts with a depthwise 3x3 convolution, not {dw}")
        return cls(*_matrix(dw), *_matrix(pw), *_matrix(cast(nn.Conv2d, last)))

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        """(C, N, 9) 3x3 neighbourhoods of N cells -> (n, N) head outputs at those cells."""
        x = torch.einsum("cnk,ck->cn", patches, self.depthwise).add_(self.depthwise_bias[:, None]).relu_()
        x = torch.addmm(self.pointwise_bias[:, None], self.pointwise, x).relu_()
        return torch.addmm(self.out_bias[:, None], self.out, x)


def _matrix(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution's weights as (out, in * kh * kw), and its bias."""
    if conv.bias is None:
        raise ValueError(f"{conv} has no bias: fold the batch-norms first (fuse_batch_norms)")
    return conv.weight.detach().flatten(1).clone(), conv.bias.detach().clone()


class CellHeads:
    """The size and action heads of a model (batch-norms folded) at chosen cells of the fused map:
    the same numbers as the dense heads there, for the cost of a few cells."""

    def __init__(self, model: ArgusLocalizer) -> None:
        self.size = _CellHead.of(model.size_head)
        self.actions = _CellHead.of(model.action_head)

    def __call__(self, fused: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fused: (C, h, w) of one frame; ys, xs: (N,) cells -> size outputs (4, N), action logits (A, N)."""
        padded = F.pad(fused, (1, 1, 1, 1))  # the convolution's zero padding
        neighbours = torch.arange(3, device=ys.device)
        rows = (ys[:, None] + neighbours)[:, :, None].expand(-1, 3, 3).flatten(1)  # (N, 9), row-major 3x3
        cols = (xs[:, None] + neighbours)[:, None, :].expand(-1, 3, 3).flatten(1)
        patches = padded[:, rows, cols]  # (C, N, 9)
        return self.size(patches), self.actions(patches)


def inference_model(model: ArgusLocalizer, device: torch.device) -> ArgusLocalizer:
    """The copy a backend runs, on `device`. The caller's model is untouched (training may go on
    using it)."""
    fast = cast(ArgusLocalizer, fuse_batch_norms(model).to(device))
    fast.temporal = ChannelsLastTemporal(fast.temporal).to(device)  # type: ignore[assignment]
    return cast(ArgusLocalizer, to_channels_last(fast))
