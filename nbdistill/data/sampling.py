"""Samplers whose order is a function of (seed, epoch), so a resumed run sees the same batches."""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``n`` indices with a generator seeded by ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before each epoch. :meth:`skip_once` drops the first indices
    of the next pass only: a run resumed mid-epoch continues with the batches it had not seen.
    """

    def __init__(self, n: int, seed: int = 0):
        self.n = n
        self.seed = seed
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_once(self, count: int) -> None:
        self._skip = max(0, int(count))

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        skip, self._skip = self._skip, 0
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.n
