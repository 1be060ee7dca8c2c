"""The real data a distillation reads: a data module's splits as tensors, and per-class sampling."""

from __future__ import annotations

import hashlib

import pytorch_lightning as pl
import torch

from ...core.batches import split_tensors
from ...core.errors import ConfigError


class RealSet:
    """The real training images in memory, indexed by class (what DC, DM and the inits sample)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int):
        if y.dtype != torch.long or y.dim() != 1:
            raise ConfigError(f"dataset distillation needs integer class labels, got {y.dtype} of shape {tuple(y.shape)}")
        self.x, self.y, self.num_classes = x, y, num_classes
        self.indices = [torch.nonzero(y == c).flatten() for c in range(num_classes)]
        empty = [c for c, idx in enumerate(self.indices) if len(idx) == 0]
        if empty:
            raise ConfigError(f"the training data has no examples of class(es) {empty}")

    @classmethod
    def from_data(cls, data: pl.LightningDataModule) -> RealSet:
        x, y = split_tensors(data, "train")
        num_classes = getattr(data, "num_classes", None) or int(y.max()) + 1
        return cls(x, y.long(), num_classes)

    def of_class(self, c: int) -> torch.Tensor:
        return self.x[self.indices[c]]

    def sample(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random images of class ``c`` (all of them, shuffled, when the class has fewer)."""
        idx = self.indices[c]
        return self.x[idx[torch.randperm(len(idx), generator=generator)[:n]]]

    def smallest_class(self) -> int:
        return min(len(idx) for idx in self.indices)

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        h.update(self.x.detach().cpu().contiguous().numpy().tobytes())
        h.update(self.y.cpu().numpy().tobytes())
        return h.hexdigest()[:16]
