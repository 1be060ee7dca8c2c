"""Networks for 1-D signals (``[channels, length]`` inputs such as MNIST-1D's ``[1, 40]``).

:class:`ConvTransformer1D` is the teacher of signal KD: a convolutional stem that turns the signal
into tokens, then transformer blocks whose queries, keys and values come from depthwise
convolutions (the "convolutional projection" that ClST's convolution-transformer projection block
and CvT use), so attention sees local shape as well as global context. :class:`SignalCNN` is the
small student: two convolution–pooling stages and a linear classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _as_signal(x: torch.Tensor, in_shape: tuple[int, int], who: str) -> torch.Tensor:
    if x.dim() == 2:
        x = x.view(x.shape[0], *in_shape)
    if tuple(x.shape[1:]) != in_shape:
        raise ValueError(f"{who} expects signals of shape {list(in_shape)}, got {list(x.shape[1:])}")
    return x


class ConvProjectionAttention(nn.Module):
    r"""Multi-head self-attention whose Q, K, V are a depthwise convolution along the sequence
    followed by a linear map: :math:`Q = \mathrm{DWConv}_q(X) W_q` (same for K, V), then
    :math:`\mathrm{softmax}(QK^\top/\sqrt{d_h})V` per head."""

    def __init__(self, dim: int, heads: int, kernel: int = 3):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim) for _ in range(3))
        self.linears = nn.ModuleList(nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        xt = x.transpose(1, 2)
        q, k, v = (
            lin(conv(xt).transpose(1, 2)).view(b, n, self.heads, d // self.heads).transpose(1, 2)
            for conv, lin in zip(self.convs, self.linears)
        )
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d))


class ConvTransformerBlock(nn.Module):
    """Pre-norm block: ``x + attention(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvProjectionAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ConvTransformer1D(nn.Module):
    """Convolutional stem (two convolutions, the second of stride 2), learned positions,
    ``depth`` :class:`ConvTransformerBlock` s, mean pooling over tokens, linear classifier.

    Example: ``ConvTransformer1D((1, 40), 10, width=32, depth=2, heads=4)`` is the MNIST-1D teacher.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 40), num_classes: int = 10, width: int = 32, depth: int = 2, heads: int = 4):
        super().__init__()
        c, length = in_shape
        self.in_shape = (int(c), int(length))
        self.stem = nn.Sequential(
            nn.Conv1d(c, width, 5, padding=2), nn.GELU(), nn.Conv1d(width, width, 3, stride=2, padding=1), nn.GELU()
        )
        tokens = (length + 1) // 2
        self.pos = nn.Parameter(torch.zeros(1, tokens, width))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[ConvTransformerBlock(width, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_signal(x, self.in_shape, "ConvTransformer1D")
        tokens = self.stem(x).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(tokens)).mean(1))


class SignalCNN(nn.Module):
    """Small 1-D CNN: ``[conv k5 → ReLU → max-pool 2] → [conv k3 → ReLU → max-pool 2] → linear``."""

    def __init__(self, in_shape: Sequence[int] = (1, 40), num_classes: int = 10, width: int = 8):
        super().__init__()
        c, length = in_shape
        self.in_shape = (int(c), int(length))
        self.features = nn.Sequential(
            nn.Conv1d(c, width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.classifier = nn.Linear(width * (length // 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_signal(x, self.in_shape, "SignalCNN")
        return self.classifier(self.features(x).flatten(1))
