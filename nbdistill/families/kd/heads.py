"""Small learned heads that feature-based methods put on top of hooked features.

Each is sized from the shapes of the features it reads (``[C]`` vectors or ``[C, H, W]`` maps,
batch dimension excluded), so it fits any student/teacher pair. They are trained with the
student and thrown away after distillation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _flat(shape: Sequence[int]) -> int:
    return math.prod(shape)


class HintRegressor(nn.Module):
    """FitNets' regressor r: student guided-layer features → the shape of the teacher's hint.

    Two conv maps get a convolution whose kernel ``(H_s − H_t + 1) × (W_s − W_t + 1)`` makes the
    spatial sizes agree (Romero et al. 2015); any other pair of shapes gets a linear map of
    the flattened features, reshaped to the hint's shape.
    """

    def __init__(self, student_shape: Sequence[int], teacher_shape: Sequence[int]):
        super().__init__()
        self.teacher_shape = tuple(teacher_shape)
        s, t = tuple(student_shape), self.teacher_shape
        self.conv = len(s) == 3 and len(t) == 3 and s[1] >= t[1] and s[2] >= t[2]
        if self.conv:
            self.map = nn.Conv2d(s[0], t[0], kernel_size=(s[1] - t[1] + 1, s[2] - t[2] + 1))
        else:
            self.map = nn.Linear(_flat(s), _flat(t))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.conv:
            return self.map(features)
        return self.map(features.flatten(1)).view(-1, *self.teacher_shape)


def pooled_features(shape: Sequence[int], width: int) -> nn.Sequential:
    """Features of shape ``shape`` → a ``[width]`` vector: a ``[C, H, W]`` map through a 1×1 convolution,
    ReLU and global average pooling, anything else flattened through a linear layer and ReLU."""
    shape = tuple(shape)
    if len(shape) == 3:
        return nn.Sequential(nn.Conv2d(shape[0], width, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(nn.Flatten(), nn.Linear(_flat(shape), width), nn.ReLU())


class LogitProjector(nn.Module):
    """OFA's projector: a student stage's features → class logits (Hao et al. 2023).

    The features go through :func:`pooled_features` to ``hidden`` units, then ``Linear(hidden, num_classes)``.
    """

    def __init__(self, shape: Sequence[int], num_classes: int, hidden: int = 128):
        super().__init__()
        self.body = pooled_features(shape, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(features))


class ExitHead(nn.Module):
    """An early exit of "Be Your Own Teacher": a bottleneck to the deepest feature's size, then a classifier.

    Returns ``(feature, logits)``; the feature is what the L2 hint compares with the deepest one.
    """

    def __init__(self, shape: Sequence[int], feature_dim: int, num_classes: int):
        super().__init__()
        self.bottleneck = pooled_features(shape, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.bottleneck(features)
        return feature, self.classifier(feature)


class CosineCritic(nn.Module):
    r"""The critic of a mutual-information bound: :math:`f(h_s, h_t) = \cos(W_s h_s, W_t h_t) / \tau`.

    ``forward`` returns the ``[B, B]`` matrix of scores ``f(student_i, teacher_j)``; bounding the
    critic by :math:`1/\tau` keeps the exponentials of the bound tame.
    """

    def __init__(self, student_shape: Sequence[int], teacher_shape: Sequence[int], dim: int = 64, temperature: float = 0.1):
        super().__init__()
        self.student_proj = nn.Linear(_flat(student_shape), dim)
        self.teacher_proj = nn.Linear(_flat(teacher_shape), dim)
        self.temperature = temperature

    def forward(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        s = F.normalize(self.student_proj(student_features.flatten(1)), dim=-1)
        t = F.normalize(self.teacher_proj(teacher_features.flatten(1)), dim=-1)
        return s @ t.T / self.temperature
