"""``DigitsShift``: a taxonomy-adaptive domain shift on the 8×8 digits.

A well-labelled *source* domain (clean digits of some classes only) and a scarcely labelled *target*
domain (the same kind of digits rotated and noisy, with every class, so the classes missing from the
source are new there): the setting of optimization trajectory distillation (Fan et al., ICCV 2023,
"Taxonomy Adaptive Cross-Domain Adaptation in Medical Imaging via Optimization Trajectory
Distillation"), at the size of a laptop. Generated from scikit-learn's digits; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions, split_by_class, standardise, stratified_subset


def shift_domain(images: np.ndarray, rotation: float, noise: float, seed: int) -> np.ndarray:
    """``images`` (``[N, 8, 8]``) rotated by ``rotation`` degrees (bilinear, about the centre) plus
    Gaussian noise of standard deviation ``noise`` (in the digits' 0–16 intensity units), seeded."""
    from scipy.ndimage import rotate

    out = rotate(images, rotation, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
    rng = np.random.default_rng(seed)
    return (out + noise * rng.standard_normal(out.shape)).astype(np.float32)


class DigitsShift(ArrayDataModule):
    """Source: clean digits of ``source_classes``, every labelled training example of them (the split
    ``"source"``, ``dataset("source")``). Target: the other half of the training digits rotated by
    ``rotation`` degrees with noise, all ten classes, ``n_target`` of them labelled (the ``"train"``
    split, stratified); the validation and test splits are target-domain digits of all ten classes.
    The training digits are halved (stratified) so that no image is in both domains. Inputs are
    standardised with the statistics of the source and target training inputs together.

    Args:
        source_classes: the digits the source domain has labels for; the others are new in the target.
        n_target: labelled target training examples (at least one per class).
        rotation, noise: the domain shift (degrees; noise standard deviation in 0–16 intensity units).
        batch_size, seed: as :class:`~.digits.Digits`; ``split_seed`` fixes the splits and the noise.
    """

    def __init__(
        self,
        source_classes: Sequence[int] = (0, 1, 2, 3, 4, 5, 6),
        n_target: int = 100,
        rotation: float = 40.0,
        noise: float = 2.0,
        batch_size: int = 32,
        split_seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        self.source_classes = sorted({int(c) for c in source_classes})
        if not self.source_classes or not set(self.source_classes) <= set(range(10)):
            raise ConfigError(f"source_classes must be digits 0-9, got {list(source_classes)}")
        if len(self.source_classes) == 10:
            raise ConfigError("source_classes holds all ten digits: leave some out, they are the new classes of the target")
        if noise < 0:
            raise ConfigError(f"noise is a standard deviation: it must be >= 0, got {noise}")
        self.n_target = n_target
        self.rotation = rotation
        self.noise = noise
        self.split_seed = split_seed
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.num_classes = 10
        self.input_shape = (64,)

    @property
    def new_classes(self) -> list[int]:
        """The classes the target has and the source has not."""
        return [c for c in range(10) if c not in self.source_classes]

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        images, y = load_digits(return_X_y=True)
        images = images.reshape(-1, 8, 8).astype(np.float32)
        train, val, test = split_by_class(y, self.val_fraction, self.test_fraction, self.split_seed)
        source, target = train_test_split(train, test_size=0.5, stratify=y[train], random_state=self.split_seed)
        source = np.sort(source[np.isin(y[source], self.source_classes)])
        if not 10 <= self.n_target <= len(target):
            raise ConfigError(f"n_target must be between 10 (one per class) and {len(target)}, got {self.n_target}")
        target = stratified_subset(np.sort(target), y[np.sort(target)], self.n_target, self.split_seed)
        shifted = {
            name: shift_domain(images[idx], self.rotation, self.noise, self.split_seed + k).reshape(len(idx), -1)
            for k, (name, idx) in enumerate((("train", target), ("val", val), ("test", test)))
        }
        clean_source = images[source].reshape(len(source), -1)
        both = np.concatenate([clean_source, shifted["train"]])
        _, clean_source, *rest = standardise(both, clean_source, shifted["train"], shifted["val"], shifted["test"])
        out = {"source": (clean_source, y[source])}
        out.update({name: (x, y[idx]) for (name, idx), x in zip((("train", target), ("val", val), ("test", test)), rest)})
        return out
