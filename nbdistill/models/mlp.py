"""A multi-layer perceptron, the default student and teacher of the tutorials."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``in_features → hidden[0] → … → out_features`` with ReLU; inputs are flattened first.

    Example: ``MLP(64, [32], 10)`` is the 64-32-10 digits student.
    """

    def __init__(self, in_features: int = 64, hidden: Sequence[int] = (32,), out_features: int = 10, dropout: float = 0.0):
        super().__init__()
        self.in_features = in_features
        # kept as attributes so that a run records them and run.student() rebuilds the network
        self.hidden = list(hidden)
        self.out_features = out_features
        self.dropout = dropout
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"MLP expects {self.in_features} input features, got {x.shape[1]}")
        return self.net(x)
