"""``ArrayDataModule``: the shared machinery of the embedded data sets (splits, exact-resume order),
and the checks every in-memory split goes through: class labels, inputs, made splits."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..core.datachecks import labels_outside, labels_with_gaps
from ..core.errors import ConfigError
from .sampling import EpochSeededSampler, IndexBatches, TensorBatches


class SplitsMade(UserWarning):
    """Only a training split was given: nbdistill made the validation and test splits from it."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside nbdistill (the user's line)."""
    package = str(Path(__file__).resolve().parents[1])
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _numpy(values: Any) -> np.ndarray:
    """``values`` (a tensor, an array, a pandas object, a list) as a numpy array, without copying a tensor."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    arr = np.asarray(values)
    return arr if arr.flags.writeable else arr.copy()  # (pandas hands out read-only views; torch wants to own them)


def class_labels(y: Any, where: str = "the labels") -> torch.Tensor:
    """``y`` as a 1-D ``int64`` tensor of class indices, or a :class:`ConfigError` naming what is wrong.

    Integer and boolean labels pass; floats that are all whole numbers (``1.0``) are cast to
    integers; any other float (``0.5``), a string, a negative label or a 2-D array is refused: cast
    to ``long`` they would silently become other classes (``0.5`` trains as class 0).
    """
    arr = _numpy(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = " (one-hot labels? pass y.argmax(1))" if arr.ndim == 2 else ""
        raise ConfigError(f"{where} must be a 1-D vector of class indices, got shape {tuple(arr.shape)}{hint}")
    kind = arr.dtype.kind
    if kind in "USO":
        sample = next(iter(arr.tolist()), None)
        raise ConfigError(
            f"{where} must be integer class indices 0..C-1, got {type(sample).__name__} labels such as {sample!r}; "
            "encode them first, e.g. y = pandas.factorize(y)[0] or sklearn.preprocessing.LabelEncoder().fit_transform(y)"
        )
    if kind == "c":
        raise ConfigError(f"{where} must be integer class indices 0..C-1, got complex numbers")
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ConfigError(f"{where} hold NaN or infinite values; drop those examples or give them a class")
        fractional = arr[arr != np.round(arr)]
        if len(fractional):
            raise ConfigError(
                f"{where} must be integer class indices 0..C-1, but they hold fractions such as {float(fractional[0]):g} "
                f"({len(fractional)} of {len(arr)}); cast to classes they would be truncated (0.5 -> class 0). "
                "nbdistill's methods are classifiers: give integer labels (whole numbers stored as floats, "
                "like 1.0, are accepted)"
            )
    labels = torch.from_numpy(np.ascontiguousarray(arr).astype(np.int64, copy=False))
    if len(labels) and int(labels.min()) < 0:
        raise ConfigError(
            f"{where} must be class indices 0..C-1, but they hold negative labels such as {int(labels.min())}; "
            "map them to 0..C-1, e.g. y = numpy.unique(y, return_inverse=True)[1]"
        )
    return labels


def input_features(x: Any, where: str = "the inputs") -> torch.Tensor:
    """``x`` (tensor, array, DataFrame, list) as a ``float32`` tensor, or a :class:`ConfigError` for
    non-numeric columns. Integer and boolean inputs become floats; the values are not rescaled."""
    columns = getattr(x, "columns", None)
    if columns is not None and hasattr(x, "dtypes"):  # a pandas DataFrame: name the columns that are not numbers
        bad = [str(c) for c, kind in zip(columns, x.dtypes) if getattr(kind, "kind", "O") not in "biuf"]
        if bad:
            raise ConfigError(
                f"{where} must be numbers, but column(s) {bad} are not; encode them first, e.g. pandas.get_dummies(X) "
                "or X[col].astype('category').cat.codes"
            )
    arr = _numpy(x)
    if arr.dtype.kind not in "biuf":
        raise ConfigError(f"{where} must be numbers, got an array of {arr.dtype}; convert it to floats first")
    if arr.ndim < 1:
        raise ConfigError(f"{where} must have one row per example, got a scalar")
    if isinstance(x, torch.Tensor) and x.dtype == torch.float32:
        out = x.detach().cpu()
    else:
        out = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return out.reshape(-1, 1) if out.dim() == 1 else out  # one number per example: one feature


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """A :class:`ConfigError` unless both held-out shares are in (0, 1) and leave some training data."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction and test_fraction must be in (0, 1) and sum below 1, got {val_fraction}, {test_fraction}"
        )


def split_by_class(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int, what: str = "examples"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)`` of ``labels``, stratified by class with ``seed``: val and test hold
    ``val_fraction`` and ``test_fraction`` of the examples (in scikit-learn's order, not sorted)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    held = val_fraction + test_fraction
    try:
        train, rest = train_test_split(idx, test_size=held, stratify=labels, random_state=seed)
        val, test = train_test_split(rest, test_size=test_fraction / held, stratify=labels[rest], random_state=seed)
    except ValueError as exc:
        raise ConfigError(f"cannot split {len(labels)} {what} into train/val/test by class: {exc}") from exc
    return train, val, test


def carve_splits(
    x: torch.Tensor, y: torch.Tensor, missing: tuple[str, ...], fraction: float, seed: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Split ``(x, y)`` into ``"train"`` and the ``missing`` splits (each ``fraction`` of the examples),
    stratified by class with ``seed``, and say so with a :class:`SplitsMade` warning naming the sizes."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    labels = y.numpy()
    parts: dict[str, np.ndarray] = {}
    try:
        for i, name in enumerate(missing):
            share = fraction / (1 - fraction * i)  # of what is left
            idx, held = train_test_split(idx, test_size=share, stratify=labels[idx], random_state=seed)
            parts[name] = np.sort(held)
    except ValueError as exc:
        counts = np.bincount(labels)
        rare = [c for c, n in enumerate(counts) if 0 < n < 1 + len(missing)]
        why = f"class(es) {rare} have too few examples" if rare else str(exc)
        raise ConfigError(
            f"cannot make stratified {' and '.join(missing)} split(s) from {len(y)} training examples: {why}; "
            "give more examples per class, or pass the splits yourself: data={'train': (X, y), 'val': (X, y), 'test': (X, y)}"
        ) from None
    parts["train"] = np.sort(idx)
    made = ", ".join(f"{name} {len(parts[name])}" for name in missing)
    what = f"{' and '.join(missing)} split{'s' if len(missing) > 1 else ''}"
    given = "only a training split was given" if len(missing) == 2 else f"no {missing[0]} split was given"
    warnings.warn(
        f"{given}: nbdistill made the {what} from the training examples, stratified by class with seed {seed} "
        f"({made}; {len(parts['train'])} left to train on). Pass data={{'train': (X, y), 'val': (X, y), "
        "'test': (X, y)} to choose them yourself",
        SplitsMade,
        stacklevel=user_stacklevel(),
    )
    return {name: (x[torch.from_numpy(part)], y[torch.from_numpy(part)]) for name, part in parts.items()}


class ArrayDataModule(pl.LightningDataModule):
    """A data module over in-memory train/val/test arrays.

    Subclasses implement :meth:`load` returning ``{"train"|"val"|"test": (x, y)}`` (numpy arrays or
    tensors); this class turns them into tensors, batches the training split in an order that is a
    function of ``(seed, epoch)`` (so a resumed run sees the same batches) and serves the other
    splits whole. Subclasses may set ``num_classes`` and ``input_shape``; otherwise they are read
    from the data (the largest label + 1, the shape of one input). When :meth:`load` gives only a
    ``"train"`` split (or lacks ``"val"`` or ``"test"``), the missing ones are made from it:
    ``split_fraction`` of the examples each, stratified by class, seeded by ``seed``, with a
    :class:`SplitsMade` warning naming the sizes. Labels must be integer class indices
    (:func:`class_labels`): a fractional or negative label is an error, not a silent cast.
    """

    #: The share of the examples each made split takes when :meth:`load` gives only a training split.
    split_fraction: float = 0.2
    #: True when ``num_classes`` was read from the labels (the largest + 1) rather than declared.
    num_classes_inferred: bool = False

    num_classes: int
    input_shape: tuple[int, ...]

    def __init__(self, batch_size: int = 64, seed: int = 0, eval_batch_size: int = 512):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self._splits: dict[str, TensorDataset] | None = None
        self._sampler: EpochSeededSampler | None = None

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        arrays = self.load()
        if "train" not in arrays:
            raise ConfigError(f"{type(self).__name__}.load() must return a 'train' split, got {sorted(arrays)}")
        tensors = {}
        for name, (x, y) in arrays.items():
            x, y = input_features(x, f"the {name} inputs"), class_labels(y, f"the {name} labels")
            if len(x) != len(y):
                raise ConfigError(f"the {name} split has {len(x)} inputs but {len(y)} labels; give one label per input")
            tensors[name] = (x, y)
        present = set(torch.unique(tensors["train"][1]).tolist())
        declared = getattr(self, "num_classes", None)
        for name, (_, y) in tensors.items():  # before any split is made: a stray label would make it fail
            outside = [c for c in torch.unique(y).tolist() if declared is not None and c >= declared]
            if outside:
                raise labels_outside(f"the {name} labels", outside, declared)
        if declared is None and present:
            absent = [c for c in range(1 + max(present)) if c not in present]
            if absent:
                raise labels_with_gaps(present, absent, 1 + max(present))
        missing = tuple(name for name in ("val", "test") if name not in tensors)
        if missing:
            tensors.update(carve_splits(*tensors["train"], missing, self.split_fraction, self.seed))
        if getattr(self, "input_shape", None) is None:
            self.input_shape = tuple(tensors["train"][0].shape[1:])
        if getattr(self, "num_classes", None) is None:
            self.num_classes = 1 + max((int(y.max()) for _, y in tensors.values() if len(y)), default=0)
            self.num_classes_inferred = True
        self._splits = {name: TensorDataset(x.reshape(-1, *self.input_shape), y) for name, (x, y) in tensors.items()}
        self._sampler = EpochSeededSampler(len(self._splits["train"]), self.seed)

    def skip_batches_once(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next training pass (an exact mid-epoch resume).

        A checkpoint taken after an epoch's last batch (a finished run resumed for more epochs, a
        stop on the last batch) starts the next epoch afresh: nothing is skipped."""
        self.setup()
        if batches * self.batch_size < len(self._splits["train"]):
            self._sampler.skip_once(batches * self.batch_size)

    def dataset(self, split: str) -> TensorDataset:
        self.setup()
        if split not in self._splits:
            raise ConfigError(f"unknown split {split!r}; use one of {sorted(self._splits)}")
        return self._splits[split]

    #: Data modules that augment their training inputs set this, which turns the teacher cache off.
    augments: bool = False

    def with_index(self, on: bool = True) -> None:
        """Training batches become ``(x, y, index)``: the teacher cache looks its outputs up by index."""
        self._with_index = on

    def train_dataloader(self) -> DataLoader | TensorBatches:
        self.setup()
        train = self._splits["train"]
        if getattr(self, "_with_index", False):
            train = TensorDataset(*train.tensors, torch.arange(len(train)))
        if self._distributed():
            return DataLoader(train, batch_size=self.batch_size, sampler=self._sampler)
        return TensorBatches(train.tensors, IndexBatches(len(train), self.batch_size, self._sampler))

    def val_dataloader(self) -> DataLoader | TensorBatches:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | TensorBatches:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader | TensorBatches:
        data = self.dataset(split)
        if self._distributed():  # Lightning shards a per-sample sampler exactly across processes
            return DataLoader(data, batch_size=self.eval_batch_size)
        return TensorBatches(data.tensors, IndexBatches(len(data), self.eval_batch_size))

    def _distributed(self) -> bool:
        """Under DDP the loaders stay per-sample: Lightning's distributed sampler splits samples, not batches."""
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.world_size > 1


def stratified_subset(idx: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``idx`` keeping the class proportions of ``labels`` (``labels[i]`` for ``idx[i]``)."""
    from sklearn.model_selection import train_test_split

    if n >= len(idx):
        return idx
    kept, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    return np.sort(kept)


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per-feature standardisation with the training statistics (constant features divided by 1)."""
    mean = train.mean(0)
    std = train.std(0)
    std[std < 1e-6] = 1.0
    return [(a - mean) / std for a in (train, *others)]
