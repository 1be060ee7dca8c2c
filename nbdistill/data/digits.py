"""``Digits``: scikit-learn's embedded 8×8 handwritten digits as a LightningDataModule (no download)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..core.errors import ConfigError
from .sampling import EpochSeededSampler


class Digits(pl.LightningDataModule):
    """The 1 797 digits of ``sklearn.datasets.load_digits``, split, standardised and batched.

    Args:
        batch_size: training batch size.
        split_seed: seed of the stratified train/val/test split. The zoo's teachers were trained on
            the training part of ``split_seed=0``: keep it so they have never seen your test set.
        val_fraction, test_fraction: shares of the data held out (stratified by class).
        n_train: keep only this many labelled training examples (stratified); ``None`` keeps all.
            Standardisation always uses the statistics of the full training part.
        classes: keep only these digits, relabelled ``0..len(classes)-1`` (few-class problems).
        image: yield ``[1, 8, 8]`` images instead of 64 features.
        seed: seed of the shuffling order (a function of seed and epoch, so resumes are exact).
    """

    num_features = 64

    def __init__(
        self,
        batch_size: int = 64,
        split_seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        n_train: int | None = None,
        classes: Sequence[int] | None = None,
        image: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ConfigError(f"val_fraction and test_fraction must be in (0, 1) and sum below 1, got {val_fraction}, {test_fraction}")
        if classes is not None and (len(set(classes)) < 2 or not set(classes) <= set(range(10))):
            raise ConfigError(f"classes must be at least two distinct digits 0-9, got {classes}")
        self.batch_size = batch_size
        self.split_seed = split_seed
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.n_train = n_train
        self.classes = list(classes) if classes is not None else None
        self.image = image
        self.seed = seed
        self.num_classes = len(self.classes) if self.classes else 10
        self.input_shape = (1, 8, 8) if image else (64,)
        self._splits: dict[str, TensorDataset] | None = None
        self._sampler: EpochSeededSampler | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = x.astype(np.float32)
        idx = np.arange(len(y))
        held = self.val_fraction + self.test_fraction
        train_idx, rest = train_test_split(idx, test_size=held, stratify=y, random_state=self.split_seed)
        val_idx, test_idx = train_test_split(
            rest, test_size=self.test_fraction / held, stratify=y[rest], random_state=self.split_seed
        )
        mean = x[train_idx].mean(0)
        std = x[train_idx].std(0)
        std[std < 1e-6] = 1.0
        x = (x - mean) / std
        if self.n_train is not None:
            if not self.num_classes <= self.n_train <= len(train_idx):
                raise ConfigError(f"n_train must be between {self.num_classes} and {len(train_idx)}, got {self.n_train}")
        splits = {}
        for name, part in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            if self.classes is not None:
                part = part[np.isin(y[part], self.classes)]
            if name == "train" and self.n_train is not None and self.n_train < len(part):
                part, _ = train_test_split(part, train_size=self.n_train, stratify=y[part], random_state=self.split_seed)
            labels = y[part]
            if self.classes is not None:
                relabel = {digit: i for i, digit in enumerate(self.classes)}
                labels = np.array([relabel[v] for v in labels])
            feats = torch.from_numpy(x[part])
            if self.image:
                feats = feats.view(-1, 1, 8, 8)
            splits[name] = TensorDataset(feats, torch.from_numpy(np.asarray(labels)).long())
        self._splits = splits
        self._sampler = EpochSeededSampler(len(splits["train"]), self.seed)

    def skip_batches_once(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next training pass (an exact mid-epoch resume)."""
        self.setup()
        self._sampler.skip_once(batches * self.batch_size)

    def dataset(self, split: str) -> TensorDataset:
        self.setup()
        return self._splits[split]

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._splits["train"], batch_size=self.batch_size, sampler=self._sampler)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._splits["val"], batch_size=512)

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._splits["test"], batch_size=512)
