"""``Digits``: scikit-learn's embedded 8×8 handwritten digits as a LightningDataModule (no download)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions, split_by_class, standardise, stratified_subset

#: How :class:`Digits` scales the pixels (see its ``scale`` argument).
SCALES = ("standard", "unit")


class Digits(ArrayDataModule):
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
        scale: ``"standard"`` (default) standardises each pixel with the training statistics (for
            classifiers); ``"unit"`` maps the 0-16 gray levels linearly to ``[-1, 1]`` (``x / 8 - 1``), the
            range a diffusion model's data lives in (per-pixel standardisation puts rarely inked corner
            pixels at |x| up to 33, far outside a unit-variance prior).
        seed: seed of the shuffling order (a function of seed and epoch, so resumes are exact).
    """

    def __init__(
        self,
        batch_size: int = 64,
        split_seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        n_train: int | None = None,
        classes: Sequence[int] | None = None,
        image: bool = False,
        scale: str = "standard",
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        if classes is not None and (len(set(classes)) < 2 or not set(classes) <= set(range(10))):
            raise ConfigError(f"classes must be at least two distinct digits 0-9, got {classes}")
        if scale not in SCALES:
            raise ConfigError(f"Digits scale must be one of {SCALES}, got {scale!r}")
        self.split_seed = split_seed
        self.scale = scale
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.n_train = n_train
        self.classes = list(classes) if classes is not None else None
        self.image = image
        self.num_classes = len(self.classes) if self.classes else 10
        self.input_shape = (1, 8, 8) if image else (64,)

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = x.astype(np.float32)
        train_idx, val_idx, test_idx = split_by_class(y, self.val_fraction, self.test_fraction, self.split_seed)
        x = standardise(x[train_idx], x)[1] if self.scale == "standard" else x / 8.0 - 1.0
        splits = {"train": train_idx, "val": val_idx, "test": test_idx}
        if self.classes is not None:
            splits = {k: v[np.isin(y[v], self.classes)] for k, v in splits.items()}
        if self.n_train is not None:
            if not self.num_classes <= self.n_train <= len(splits["train"]):
                raise ConfigError(f"n_train must be between {self.num_classes} and {len(splits['train'])}, got {self.n_train}")
            splits["train"] = stratified_subset(splits["train"], y[splits["train"]], self.n_train, self.split_seed)
        relabel = np.arange(10) if self.classes is None else np.full(10, -1)
        if self.classes is not None:
            relabel[self.classes] = np.arange(len(self.classes))
        return {name: (x[part], relabel[y[part]]) for name, part in splits.items()}

    def points(self, split: str = "train") -> torch.Tensor:
        """The ``[N, 64]`` (or ``[N, 1, 8, 8]``) float32 images of a split (for sample metrics)."""
        if not hasattr(self, "_splits"):
            self.setup()
        return self.dataset(split).tensors[0]
