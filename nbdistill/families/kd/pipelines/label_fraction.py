"""The labelled fraction of a training split: which examples a semi-supervised method may read the
labels of (``kd.simclr_v2``, ``kd.unfused``), and the same examples as a data module of their own
(the "student trained on the labels alone" baseline).

The subset is stratified by class with largest-remainder apportionment: of ``N`` training examples,
``n = round(f·N)`` are labelled (at least one), class ``c`` getting ``⌊f·N_c⌋`` plus one for the
``n − Σ⌊f·N_c⌋`` classes with the largest remainders ``f·N_c − ⌊f·N_c⌋`` (ties: the smaller class
index), drawn within each class with a seeded generator. A fraction that leaves a class with no
labelled example is refused (:class:`ConfigError`, naming the classes), before any training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....core.errors import ConfigError
from ....core.registry import HParam
from ....data.base import ArrayDataModule
from ..base import KDModule

#: The seed of the labelled subset's draw: the same fraction gives the same examples to every method.
SUBSET_SEED = 0


def label_fraction_hparam() -> HParam:
    """The share of the training labels a method may read, in (0, 1] (log slider from 0.1%)."""
    return HParam(float, 0.1, 0.001, 1.0, log=True, help="share of the training labels used (stratified by class), in (0, 1]")


def check_label_fraction(fraction: float) -> None:
    """A :class:`ConfigError` unless ``0 < fraction <= 1``."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(
            f"label_fraction = {fraction} leaves no labelled example: give a fraction in (0, 1], "
            "e.g. 0.01 for 1% of the training labels"
        )


def labelled_counts(class_counts: np.ndarray, fraction: float) -> np.ndarray:
    """Labelled examples per class: ``round(f·N)`` in all (at least 1), by largest remainders."""
    check_label_fraction(fraction)
    class_counts = np.asarray(class_counts, dtype=np.int64)
    total = min(int(class_counts.sum()), max(1, int(np.floor(fraction * class_counts.sum() + 0.5))))
    quotas = fraction * class_counts
    counts = np.floor(quotas).astype(np.int64)
    order = sorted(range(len(counts)), key=lambda c: (-(quotas[c] - counts[c]), c))
    for c in order[: max(0, total - int(counts.sum()))]:
        counts[c] += 1
    return np.minimum(counts, class_counts)


def labelled_subset(labels: Any, fraction: float, num_classes: int | None = None, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of the labelled examples among ``labels`` (a stratified ``fraction`` of them).

    Raises :class:`ConfigError` naming the classes left with no labelled example (or with no example
    at all), with the smallest fraction that labels one of each."""
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    class_counts = np.bincount(labels, minlength=classes)
    counts = labelled_counts(class_counts, fraction)
    empty = [c for c in range(classes) if counts[c] == 0]
    if empty:
        needed = 1.0 / max(1, int(class_counts[class_counts > 0].min())) if (class_counts > 0).all() else None
        fix = f"raise label_fraction to at least {needed:.3g}" if needed is not None else "give training examples of every class"
        raise ConfigError(
            f"label_fraction = {fraction} of {len(labels)} training examples leaves class(es) {empty} with no labelled "
            f"example (classes have {class_counts.tolist()} examples): {fix}"
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[: counts[c]] for c in range(classes)]
    return np.sort(np.concatenate(chosen))


def train_arrays(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole training split ``(x, y)`` of a data module, in its stored order."""
    if isinstance(data, ArrayDataModule):
        x, y = data.dataset("train").tensors[:2]
        return x, y
    if hasattr(data, "setup"):
        data.setup("fit")
    xs, ys = [], []
    for batch in data.train_dataloader():
        x, y = batch[0], batch[1]
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


class LabelledOnly(ArrayDataModule):
    """The labelled fraction of ``data``'s training split (:func:`labelled_subset`) as the training
    split, with ``data``'s validation and test splits: what a student trained on the labels alone sees.

    Example: ``LabelledOnly(nd.data.Digits(), 0.01)`` holds the same 1% of the digits' training
    labels that ``kd.simclr_v2`` and ``kd.unfused`` read with ``label_fraction=0.01``.
    """

    def __init__(self, data: ArrayDataModule, label_fraction: float, batch_size: int | None = None, seed: int = 0):
        check_label_fraction(label_fraction)
        super().__init__(batch_size=batch_size or data.batch_size, seed=seed)
        self.data = data
        self.label_fraction = label_fraction
        self.num_classes = getattr(data, "num_classes", None)
        self.input_shape = getattr(data, "input_shape", None)

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        x, y = train_arrays(self.data)
        keep = torch.as_tensor(labelled_subset(y, self.label_fraction, self.num_classes))
        splits = {"train": (x[keep], y[keep])}
        for split in ("val", "test"):
            splits[split] = tuple(self.data.dataset(split).tensors[:2])
        return splits


class LabelFractionKD(KDModule):
    """Base of the methods that may read only a ``label_fraction`` of the training labels.

    :meth:`check_data` refuses, before training, a fraction that leaves a class unlabelled;
    :meth:`prepare` (called from ``setup``) keeps every training input (unlabelled) and the labelled
    subset; :meth:`labelled_batch` draws a mini-batch of the labelled subset with a generator seeded
    by the run's seed and the global step, so a rerun and a resume draw the same examples."""

    label_fraction = label_fraction_hparam()

    def build_parts(self) -> None:
        super().build_parts()
        check_label_fraction(self.label_fraction)
        self._inputs: torch.Tensor | None = None
        self._labelled: tuple[torch.Tensor, torch.Tensor] | None = None
        self._seed = 0

    def check_data(self, data: Any) -> None:
        super().check_data(data)
        labelled_subset(train_arrays(data)[1], self.label_fraction, getattr(data, "num_classes", None))

    def prepare(self, data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """``(inputs, labelled inputs, their labels, classes)`` of ``data``'s training split (the
        other labels are never returned), and the run's seed kept for :meth:`labelled_batch`."""
        x, y = train_arrays(data)
        classes = int(getattr(data, "num_classes", None) or int(y.max()) + 1)
        keep = torch.as_tensor(labelled_subset(y, self.label_fraction, classes))
        self._seed = torch.initial_seed() % 2**31
        self._inputs = x
        self._labelled = (x[keep], y[keep])
        return x, x[keep], y[keep], classes

    def labelled_batch(self, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` (at most all) labelled examples, drawn without replacement for this global step."""
        x, y = self._labelled
        if x.device != device:
            self._labelled = x, y = x.to(device), y.to(device)
        generator = torch.Generator().manual_seed(self._seed * 1_000_003 + self.global_step)
        pick = torch.randperm(len(x), generator=generator)[: min(size, len(x))].to(device)
        return x[pick], y[pick]

    def report(self, name: str, value: float, step: int) -> None:
        """Write the scalar ``name`` of an inner phase to the run (when one is attached)."""
        writer = self._run_writer()
        if writer is not None:
            writer.scalar(name, float(value), step=step)
