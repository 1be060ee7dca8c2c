"""Batches as the methods read them: ``(inputs, labels, ...)`` sequences, or Hugging Face style dicts
read by key (:data:`INPUT_KEYS`, :data:`LABEL_KEYS`) and handed on as ``[inputs, labels]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from .errors import ConfigError

#: Where a batch that is a dict (Hugging Face style) holds its inputs and its labels: the first key found.
INPUT_KEYS = ("input", "inputs", "x", "pixel_values", "input_values", "features")
LABEL_KEYS = ("label", "labels", "y", "target", "targets")


def dict_key(batch: Mapping, keys: tuple[str, ...], what: str) -> Any:
    """The first of ``keys`` in ``batch``, or a :class:`ConfigError` listing the keys it has."""
    for key in keys:
        if key in batch:
            return key
    raise ConfigError(
        f"the data's batches are dicts with keys {sorted(map(str, batch))}, and none of them holds the {what}: "
        f"nbdistill reads the inputs under one of {list(INPUT_KEYS)} and the labels under one of {list(LABEL_KEYS)}; "
        "rename the keys (e.g. a Hugging Face dataset's .rename_column('img', 'pixel_values')) or make each "
        "batch an (inputs, labels) pair"
    )


def as_pair(batch: Any) -> Any:
    """A dict batch as ``[inputs, labels]`` (read by key, see :data:`INPUT_KEYS`, :data:`LABEL_KEYS`);
    any other batch unchanged."""
    if isinstance(batch, Mapping):
        return [batch[dict_key(batch, INPUT_KEYS, "inputs")], batch[dict_key(batch, LABEL_KEYS, "labels")]]
    return batch


def read_dict_batches(data: pl.LightningDataModule) -> None:
    """Make ``data`` hand its dict batches to the model as ``[inputs, labels]`` (:func:`as_pair`), through
    its ``on_before_batch_transfer`` hook: set on this data module only, so data with (x, y) batches
    pays nothing, and the model overrides no hook (Lightning warns when both could)."""
    if getattr(data, "_reads_dict_batches", False):
        return
    own = data.on_before_batch_transfer
    data._own_batch_hook = vars(data).get("on_before_batch_transfer")  # an instance's own, if it set one

    def to_pair(batch: Any, dataloader_idx: int) -> Any:
        return as_pair(own(batch, dataloader_idx))

    data.on_before_batch_transfer = to_pair
    data._reads_dict_batches = True


def stop_reading_dict_batches(data: pl.LightningDataModule) -> None:
    """Undo :func:`read_dict_batches` once training is over: the user's data module is left as given."""
    if not vars(data).pop("_reads_dict_batches", False):
        return
    own = vars(data).pop("_own_batch_hook", None)
    if own is None:
        del data.on_before_batch_transfer  # the class's hook shows through again
    else:
        data.on_before_batch_transfer = own


def batch_size(batch: Any) -> int | None:
    """How many examples ``batch`` holds, when its first element is a tensor."""
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].shape[0]
    return None


def split_tensors(data: pl.LightningDataModule, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a data module's split: ``data.dataset(split)`` when it has one (the kit's
    :class:`~nbdistill.data.ArrayDataModule`), otherwise one pass over its ``<split>_dataloader()``."""
    data.setup("fit")
    if hasattr(data, "dataset"):
        dataset = data.dataset(split)
        if hasattr(dataset, "tensors"):
            x, y = dataset.tensors[:2]
            return x, y
    loader = getattr(data, f"{split}_dataloader")()
    xs, ys = zip(*[(batch[0], batch[1]) for batch in loader])
    return torch.cat(xs), torch.cat(ys)
