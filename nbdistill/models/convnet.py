"""A small ConvNet: blocks of conv 3×3 → norm → ReLU → average-pool, then a linear classifier.

It is the shape of the "ConvNet" used throughout dataset distillation, scaled to small images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvNet(nn.Module):
    """``depth`` conv blocks of ``width`` channels on ``[C, H, W]`` inputs (flat inputs are reshaped)."""

    def __init__(
        self, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, width: int = 32, depth: int = 2, norm: str = "instance"
    ):
        super().__init__()
        c, h, w = in_shape
        self.in_shape = tuple(in_shape)
        blocks: list[nn.Module] = []
        for _ in range(depth):
            blocks += [nn.Conv2d(c, width, 3, padding=1), _norm(norm, width), nn.ReLU(), nn.AvgPool2d(2)]
            c, h, w = width, h // 2, w // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(width * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.in_shape)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"ConvNet expects inputs of shape {list(self.in_shape)}, got {list(x.shape[1:])}")
        return self.classifier(self.features(x).flatten(1))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use 'instance', 'batch' or 'none'")
