"""``FairTabular``: synthetic tabular data with a binary sensitive attribute, generated locally.

Fairness methods need, besides ``(x, y)``, the group ``s`` each example belongs to; this data
module's batches are ``(x, y, s)`` (``s`` a 0/1 ``int64`` tensor), which every classifier method
reads as ``(x, y)`` (it takes the first two elements) and ``kd.fair`` reads whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions, split_by_class, standardise


def make_fair_tabular(
    num_samples: int, num_features: int, num_proxies: int, label_bias: float, proxy_strength: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(x, y, s)`` drawn with ``numpy.random.default_rng(seed)``:

    .. math::
        s \sim \mathrm{Bernoulli}(1/2),\quad u \sim \mathcal N(0, I_k),\quad
        y = \mathbb 1\big[w^\top u + b\,(2s - 1) + \varepsilon > 0\big],\ \varepsilon \sim \mathcal N(0, 1/4),

    with ``k = num_features - num_proxies`` "merit" features ``u``, ``w`` a fixed random unit vector
    and ``b = label_bias``; the inputs are ``x = [u, p]`` where the ``num_proxies`` proxy features
    ``p ~ N(proxy_strength·(2s − 1), 1)`` reveal the group. The label depends on ``s`` (base rates
    differ by group) and the inputs reveal ``s`` through the proxies, so an accurate classifier
    has a large demographic-parity gap, and a fair one must give up some accuracy.
    """
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, num_samples)
    sign = 2.0 * s - 1.0
    merit = rng.standard_normal((num_samples, num_features - num_proxies))
    w = rng.standard_normal(num_features - num_proxies)
    w /= np.linalg.norm(w)
    y = (merit @ w + label_bias * sign + 0.5 * rng.standard_normal(num_samples) > 0).astype(np.int64)
    proxies = proxy_strength * sign[:, None] + rng.standard_normal((num_samples, num_proxies))
    x = np.concatenate([merit, proxies], axis=1).astype(np.float32)
    return x, y, s.astype(np.int64)


class FairTabular(ArrayDataModule):
    """Synthetic tabular classification with a binary sensitive attribute ``s`` (:func:`make_fair_tabular`).

    Batches are ``(x, y, s)``. The split is stratified by (label, group), seeded by ``split_seed``;
    features are standardised with the training statistics.

    Args:
        num_samples: examples generated (before the split).
        num_features: input features, of which ``num_proxies`` reveal the group.
        label_bias: how much the label depends on the group (0: equal base rates).
        proxy_strength: how far apart the groups' proxy features are (0: they reveal nothing).
        batch_size, seed: training batch size and shuffling seed.
        split_seed: seed of the generation and of the split.
        val_fraction, test_fraction: shares held out.
        n_train: keep only the first ``n_train`` training examples (``None``: all).
    """

    num_classes = 2

    def __init__(
        self,
        num_samples: int = 2000,
        num_features: int = 8,
        num_proxies: int = 2,
        label_bias: float = 1.0,
        proxy_strength: float = 1.5,
        batch_size: int = 128,
        split_seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        n_train: int | None = None,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        if not 0 <= num_proxies < num_features:
            raise ConfigError(
                f"num_proxies must be in [0, num_features), got {num_proxies} of {num_features} features: "
                "at least one feature must carry the label"
            )
        if num_samples < 40:
            raise ConfigError(
                f"num_samples must be at least 40 (every split needs both labels and both groups), got {num_samples}"
            )
        self.num_samples, self.num_features, self.num_proxies = num_samples, num_features, num_proxies
        self.label_bias, self.proxy_strength = label_bias, proxy_strength
        self.split_seed, self.val_fraction, self.test_fraction = split_seed, val_fraction, test_fraction
        self.n_train = n_train
        self.input_shape = (num_features,)
        self._sensitive: dict[str, torch.Tensor] = {}

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y, s = make_fair_tabular(
            self.num_samples, self.num_features, self.num_proxies, self.label_bias, self.proxy_strength, self.split_seed
        )
        train, val, test = split_by_class(2 * y + s, self.val_fraction, self.test_fraction, self.split_seed, "examples")
        if self.n_train is not None:
            if not 8 <= self.n_train <= len(train):
                raise ConfigError(f"n_train must be between 8 and {len(train)}, got {self.n_train}")
            train = train[: self.n_train]
        x_train, x = standardise(x[train], x)
        parts = {"train": train, "val": val, "test": test}
        self._sensitive = {name: torch.from_numpy(s[idx]) for name, idx in parts.items()}
        return {name: (x[idx], y[idx]) for name, idx in parts.items()}

    def setup(self, stage: str | None = None) -> None:
        """The base's splits of ``(x, y)``, each with its group ``s`` as a third tensor."""
        if self._splits is not None:
            return
        super().setup(stage)
        self._splits = {name: TensorDataset(*data.tensors, self._sensitive[name]) for name, data in self._splits.items()}
