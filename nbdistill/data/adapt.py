"""``as_datamodule``: the data a user already has, as the data module ``nd.fit``, the panel and the CLI take.

Accepted (each becomes an in-memory data module, so the fast batching and the teacher-output cache
apply):

- ``(X, y)``: tensors, numpy arrays, a pandas DataFrame and Series (or lists);
- a dict of splits ``{"train": (X, y), "val": (X, y), "test": (X, y)}`` (``"validation"`` is read as
  ``"val"``); each value may also be a ``Dataset`` or a ``DataLoader``;
- a torch ``Dataset`` (a ``TensorDataset``, or any dataset whose items are ``(x, y)`` pairs or dicts
  read by key, Hugging Face style) or a ``DataLoader`` over one: read once into tensors;
- a PyG ``Data`` with node labels (node classification; ``train_mask``/``val_mask``/``test_mask``);
- a list of PyG ``Data`` with one label each, or a PyG ``Dataset`` (graph classification);
- a ``LightningDataModule``: returned as it is.

When only a training split is given, validation and test splits are made from it (stratified by
class, seeded) and a :class:`~nbdistill.data.base.SplitsMade` warning names their sizes. The class
count is the largest label + 1 unless ``num_classes`` is given; the input shape is one example's.

This module reads arrays, tensors, datasets and loaders; PyG graphs are read by
:mod:`nbdistill.data.adapt_graphs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from ..core.batches import as_pair
from ..core.errors import ConfigError
from .adapt_graphs import GraphList, GraphNodes, graph_datamodule
from .base import ArrayDataModule, input_features

__all__ = ["ACCEPTED", "ArrayData", "GraphList", "GraphNodes", "as_datamodule"]

ACCEPTED = (
    "(X, y) as tensors, numpy arrays or a pandas DataFrame and Series; a dict of splits "
    "{'train': (X, y), 'val': (X, y), 'test': (X, y)}; a torch Dataset or DataLoader of (x, y) items; "
    "a PyG Data with node masks, a list of PyG Data or a PyG Dataset; a LightningDataModule"
)
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


class ArrayData(ArrayDataModule):
    """In-memory splits handed over by :func:`as_datamodule` (tensors; see :class:`ArrayDataModule`)."""

    def __init__(
        self,
        splits: dict[str, tuple[Any, Any]],
        num_classes: int | None = None,
        batch_size: int = 64,
        seed: int = 0,
        eval_batch_size: int = 512,
        split_fraction: float = 0.2,
    ):
        super().__init__(batch_size=batch_size, seed=seed, eval_batch_size=eval_batch_size)
        self._arrays = splits
        self.split_fraction = split_fraction
        if num_classes is not None:
            self.num_classes = num_classes

    def load(self) -> dict[str, tuple[Any, Any]]:
        return self._arrays


# -- reading what the user has ------------------------------------------------------------------
def _read_all(source: Dataset | DataLoader, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(x, y)`` of a dataset or loader, read once into two tensors (dict items read by key)."""
    if isinstance(source, TensorDataset):
        if len(source.tensors) < 2:
            raise ConfigError(f"{where} is a TensorDataset of {len(source.tensors)} tensor(s); give it (inputs, labels)")
        return input_features(source.tensors[0], f"{where}'s inputs"), source.tensors[1]
    loader = source if isinstance(source, DataLoader) else DataLoader(source, batch_size=1024)
    xs, ys = [], []
    try:
        for batch in loader:
            pair = as_pair(batch)
            if not isinstance(pair, (list, tuple)) or len(pair) < 2:
                raise ConfigError(
                    f"{where} yields {type(pair).__name__} items; each item must be an (input, label) pair or a dict "
                    "with the input and the label under known keys"
                )
            xs.append(input_features(pair[0], f"{where}'s inputs"))
            ys.append(torch.as_tensor(np.asarray(pair[1]) if not isinstance(pair[1], torch.Tensor) else pair[1]).reshape(-1))
    except (TypeError, RuntimeError) as exc:
        raise ConfigError(
            f"cannot read {where} into tensors ({type(exc).__name__}: {exc}); make each item an (input tensor, integer "
            "label) pair"
        ) from exc
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys)


def _pair(value: Any, where: str) -> tuple[Any, Any]:
    """``value`` as ``(inputs, labels)``: an ``(X, y)`` pair as given, a dataset or loader read whole."""
    if isinstance(value, (Dataset, DataLoader, IterableDataset)):
        return _read_all(value, where)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    if _looks_like_table(value):
        hint = " (a DataFrame: pass (df.drop(columns='label'), df['label']))" if hasattr(value, "columns") else ""
        raise ConfigError(f"{where} holds only inputs: pass the inputs and the labels as a pair (X, y){hint}")
    raise ConfigError(f"{where} must be an (X, y) pair, a Dataset or a DataLoader, got {type(value).__name__}")


def _looks_like_table(obj: Any) -> bool:
    return isinstance(obj, (torch.Tensor, np.ndarray)) or hasattr(obj, "columns") or hasattr(obj, "to_numpy")


def _split_dict(data: Mapping) -> dict[str, Any]:
    splits = {}
    for key, value in data.items():
        name = SPLIT_NAMES.get(str(key).lower())
        if name is None:
            raise ConfigError(f"unknown split {key!r} in the data dict; use 'train', 'val' and 'test'")
        if value is None:
            raise ConfigError(
                f"the {name} split is None. nbdistill measures the teacher-student gap on a test split (and validates "
                f"on a val split): give it, or leave the key out to have it made from the training split"
            )
        splits[name] = value
    if "train" not in splits:
        raise ConfigError(f"the data dict has no 'train' split (keys: {sorted(map(str, data))})")
    return splits


def as_datamodule(
    data: Any,
    *,
    num_classes: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    split_fraction: float = 0.2,
    eval_batch_size: int = 512,
    inductive: bool = False,
) -> pl.LightningDataModule:
    """The data module for ``data`` (see the module's docstring for what is accepted).

    Args:
        num_classes: the class count; by default the largest label + 1.
        batch_size: training batch size (default: a DataLoader's own, else 64; 32 graphs).
        seed: seed of the made splits and of the training order.
        split_fraction: share of the examples each made split (val, test) takes.
        inductive: node classification only: hide the test nodes while training (GLNN's setting).

    Everything is read and checked here, once: labels must be integer class indices (whole-number
    floats such as ``1.0`` are cast; ``0.5``, strings and negative labels are a
    :class:`~nbdistill.core.errors.ConfigError`), inputs numbers, X and y of the same length.
    """
    if isinstance(data, pl.LightningDataModule):
        return data
    if data is None:
        raise ConfigError(f"no data given: pass data=... ({ACCEPTED})")
    if isinstance(data, type):
        raise ConfigError(f"data is the class {data.__name__}, not a data set: create one, e.g. data={data.__name__}()")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
        raise ConfigError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    if not 0 < split_fraction < 0.5:
        raise ConfigError(f"split_fraction must be in (0, 0.5), got {split_fraction!r}")
    splits = _split_dict(data) if isinstance(data, Mapping) else None
    graphs = graph_datamodule(
        data if splits is None else splits,
        num_classes=num_classes,
        batch_size=batch_size,
        seed=seed,
        split_fraction=split_fraction,
        eval_batch_size=eval_batch_size,
        inductive=inductive,
    )
    if graphs is not None:
        return graphs
    if splits is not None:
        pairs = {name: _pair(value, f"the {name} split") for name, value in splits.items()}
        default_batch = _loader_batch_size(splits["train"])
    elif isinstance(data, (Dataset, DataLoader, IterableDataset)):
        pairs = {"train": _read_all(data, "the dataset")}
        default_batch = _loader_batch_size(data)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        pairs = {"train": _pair(data, "the data")}
        default_batch = None
    elif _looks_like_table(data):
        pairs = {"train": _pair(data, "the data")}  # refused: inputs without labels, said so
    else:
        raise ConfigError(f"nbdistill cannot read data of type {type(data).__name__}; pass {ACCEPTED}")
    dm = ArrayData(
        pairs,
        num_classes=num_classes,
        batch_size=batch_size or default_batch or 64,
        seed=seed,
        eval_batch_size=eval_batch_size,
        split_fraction=split_fraction,
    )
    dm.setup()
    return dm


def _loader_batch_size(value: Any) -> int | None:
    return getattr(value, "batch_size", None) if isinstance(value, DataLoader) else None
