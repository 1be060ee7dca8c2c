"""``MNIST1D``: the 1-D analogue of MNIST (Greydanus, 2020), generated locally by the ``mnist1d`` package."""

from __future__ import annotations

import numpy as np

from ..core.errors import ConfigError
from .base import ArrayDataModule, standardise, stratified_subset


class MNIST1D(ArrayDataModule):
    """Ten classes of 40-sample signals made from digit-shaped templates with shifts, scaling, noise.

    Generated with ``mnist1d.data.make_dataset`` (no download; about 2 s for 5 000 signals).

    Args:
        num_samples: signals generated (the package's default split keeps 80 % for training).
        data_seed: seed of the generator; the same seed gives the same data set.
        val_fraction: share of the training part held out for validation.
        n_train: keep only this many training examples (stratified).
        channels: yield ``[1, 40]`` (for 1-D convolutions) instead of ``[40]``.
    """

    def __init__(
        self,
        batch_size: int = 100,
        num_samples: int = 5000,
        data_seed: int = 42,
        val_fraction: float = 0.1,
        n_train: int | None = None,
        channels: bool = True,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        if num_samples < 100:
            raise ConfigError(f"num_samples must be at least 100, got {num_samples}")
        self.num_samples = num_samples
        self.data_seed = data_seed
        self.val_fraction = val_fraction
        self.n_train = n_train
        self.channels = channels
        self.num_classes = 10
        self.input_shape = (1, 40) if channels else (40,)

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as exc:
            raise ConfigError("MNIST1D needs the mnist1d package: pip install mnist1d") from exc
        args = get_dataset_args()
        args.num_samples = self.num_samples
        args.seed = self.data_seed
        data = make_dataset(args)
        x, y = data["x"].astype(np.float32), np.asarray(data["y"])
        x_test, y_test = data["x_test"].astype(np.float32), np.asarray(data["y_test"])
        rng = np.random.default_rng(self.data_seed)
        order = rng.permutation(len(y))
        n_val = int(round(self.val_fraction * len(y)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.n_train is not None:
            train_idx = stratified_subset(train_idx, y[train_idx], self.n_train, self.data_seed)
        x_train, x_val, x_test = standardise(x[train_idx], x[val_idx], x_test)
        return {"train": (x_train, y[train_idx]), "val": (x_val, y[val_idx]), "test": (x_test, y_test)}
