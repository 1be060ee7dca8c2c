"""``ArchiveTargets``: the cells of a descriptor grid, the targets archive distillation is asked for.

``policy.archive`` (DCG-MAP-Elites) grows a ``grid × grid`` MAP-Elites archive over ``[low, high]^2``
and distils it into one descriptor-conditioned policy ``π(s | d)``. Every split's ``x`` is the
``[grid², 2]`` cell centres (row-major, ``y`` rows then ``x`` columns; ``y`` zeros): the validation and
test targets ``d`` for which the distilled policy is rolled out. The training split only paces the
method: each training batch is one MAP-Elites iteration, so an epoch holds ``⌈grid² / batch_size⌉`` of them.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ConfigError
from .base import ArrayDataModule


def cell_centres(grid: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """``[grid², 2]`` float32 centres of a ``grid × grid`` partition of ``[low, high]^2`` (row-major)."""
    width = (high - low) / grid
    axis = low + width * (np.arange(grid) + 0.5)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)


class ArchiveTargets(ArrayDataModule):
    """The centres of a ``grid × grid`` descriptor grid on ``[low, high]^2`` in every split (see the module docstring).

    Args:
        grid: cells per side (DCG-MAP-Elites' toy setting: 10).
        low, high: bounds of both descriptor coordinates (the reaching task's square: -1, 1).
        batch_size: targets per training batch; an epoch is ``⌈grid² / batch_size⌉`` MAP-Elites iterations.
        seed: seed of the training order.
    """

    def __init__(self, grid: int = 10, low: float = -1.0, high: float = 1.0, batch_size: int = 10, seed: int = 0):
        super().__init__(batch_size=batch_size, seed=seed)
        if isinstance(grid, bool) or not isinstance(grid, int) or not 1 <= grid <= 64:
            raise ConfigError(f"ArchiveTargets' grid must be an integer in 1..64, got {grid!r}")
        if not high > low:
            raise ConfigError(f"ArchiveTargets needs high > low, got low={low}, high={high}")
        self.grid, self.low, self.high = grid, float(low), float(high)
        self.num_classes = 1
        self.input_shape = (2,)

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x = cell_centres(self.grid, self.low, self.high)
        y = np.zeros(len(x), dtype=np.int64)
        return {split: (x, y) for split in ("train", "val", "test")}
