"""The checks every data module's splits go through before training (``nd.fit``, the panel, the CLI).

:func:`check_splits` reads each split once: whole when the data is in memory (an
:class:`~nbdistill.data.ArrayDataModule`, a graph data module: recognised by what they offer,
``dataset(split)``, ``graphs(split)`` or ``graph``, so this module needs no data class), otherwise
the first batch of each loader of any ``LightningDataModule``. It refuses, as a
:class:`~nbdistill.core.errors.ConfigError` naming the fix, what would otherwise train silently wrong
or fail late: no or an empty test split, NaN or infinite inputs in any split, labels that are not
class indices or lie outside the data's classes, a label that only the validation or test split
holds, and (when the class count was read from the labels) classes with no training example.

:func:`labels_outside` and :func:`labels_with_gaps` are the errors for labels outside ``0..C-1``
and for classes without examples, shared with the data layer's own label checks.
"""

from __future__ import annotations

from typing import Any

import torch

from .batches import as_pair
from .errors import ConfigError

SPLITS = ("train", "val", "test")
#: What :func:`split_contents` gives for a split that is there but holds no example.
EMPTY = "empty"
#: How many labels a message lists before "...".
SHOWN = 10


def listed(values) -> str:
    """``values`` as sorted integers, comma-separated, the first :data:`SHOWN` of them then "..."."""
    values = sorted(int(v) for v in values)
    return ", ".join(map(str, values[:SHOWN])) + (", ..." if len(values) > SHOWN else "")


def labels_outside(where: str, outside, classes: int) -> ConfigError:
    """The error for labels ``outside`` ``0..classes-1``."""
    return ConfigError(
        f"{where} must be class indices 0..{classes - 1} (the data has {classes} classes) but hold {listed(outside)}; "
        f"map the labels to 0..{classes - 1}, or give the data num_classes={max(outside) + 1} (and the student as many outputs)"
    )


def labels_with_gaps(present, absent, classes: int) -> ConfigError:
    """The error for labels read as ``0..classes-1`` (the class count read from them) that leave classes ``absent``."""
    return ConfigError(
        f"the labels are {{{listed(present)}}}: read as class indices 0..{classes - 1} that makes {classes} classes, "
        f"and class(es) {listed(absent)} have no training example. Fix or drop stray labels, map the labels to "
        f"0..{len(present) - 1} (e.g. y = numpy.unique(y, return_inverse=True)[1]), or pass num_classes={classes} to "
        "nbdistill.data.as_datamodule if those classes exist but are missing here"
    )


def _has_loader(data: Any, split: str) -> bool:
    """Whether ``data`` implements ``<split>_dataloader`` (Lightning's base class has one that raises)."""
    from pytorch_lightning.utilities.model_helpers import is_overridden

    name = f"{split}_dataloader"
    if not callable(getattr(data, name, None)):
        return False
    try:
        return is_overridden(name, data)
    except (ValueError, TypeError):  # not a Lightning hook holder: a plain object with the method
        return True


def _first_batch(data: Any, split: str):
    try:
        loader = getattr(data, f"{split}_dataloader")()
    except NotImplementedError:
        return None
    try:
        return as_pair(next(iter(loader)))
    except StopIteration:
        return EMPTY


def split_contents(data: Any) -> tuple[dict[str, Any], bool]:
    """``({split: (inputs, labels)}, whole)``: every split's inputs and labels when the data is in
    memory (``whole``), else each loader's first batch. A split the data lacks is absent; an empty
    one is :data:`EMPTY`."""
    out: dict[str, Any] = {}
    if callable(getattr(data, "dataset", None)) and hasattr(data, "_splits"):  # an ArrayDataModule
        for split in SPLITS:
            try:
                tensors = data.dataset(split).tensors
            except ConfigError:
                continue
            out[split] = (tensors[0], tensors[1]) if len(tensors[0]) else EMPTY
        return out, True
    if callable(getattr(data, "graphs", None)):  # graph classification: a list of graphs per split
        for split in SPLITS:
            graphs = data.graphs(split)
            xs = [g.x for g in graphs if getattr(g, "x", None) is not None]
            ys = [g.y.reshape(-1) for g in graphs if getattr(g, "y", None) is not None]
            out[split] = (torch.cat(xs) if xs else None, torch.cat(ys) if ys else None) if graphs else EMPTY
        return out, True
    graph = getattr(data, "graph", None)
    if graph is not None and getattr(graph, "train_mask", None) is not None:  # node classification on one graph
        for split in SPLITS:
            mask = getattr(graph, f"{split}_mask", None)
            if mask is None:
                continue
            # message passing reads every node's features: the train split's inputs are the whole graph's
            x = graph.x if split == "train" else graph.x[mask]
            out[split] = (x, graph.y[mask]) if bool(mask.any()) else EMPTY
        return out, True
    for split in SPLITS:
        if not _has_loader(data, split):
            continue
        batch = _first_batch(data, split)
        if batch is None:
            continue
        if batch is EMPTY:
            out[split] = EMPTY
        elif isinstance(batch, (list, tuple)) and len(batch) >= 2 and all(isinstance(b, torch.Tensor) for b in batch[:2]):
            out[split] = (batch[0], batch[1])
        else:  # a batch the family's own check reads (a PyG batch): inputs and labels by name where it has them
            out[split] = (getattr(batch, "x", None), getattr(batch, "y", None))
    return out, False


def check_splits(data: Any) -> None:
    """Raise :class:`ConfigError` for data that would train silently wrong or fail after training."""
    name = type(data).__name__
    contents, whole = split_contents(data)
    if "test" not in contents:
        raise ConfigError(
            f"the data ({name}) has no test split: nbdistill measures the teacher-student gap on the test split when "
            "training ends. Give the data module a test_dataloader(), or pass the arrays: data={'train': (X, y), "
            "'val': (X, y), 'test': (X, y)}, or data=(X, y) to have validation and test splits made"
        )
    for split in SPLITS:
        if contents.get(split) is EMPTY:
            made = "" if split == "train" else " (or leave it out: nbdistill then makes it from the training split)"
            raise ConfigError(f"the {split} split of the data ({name}) is empty; give it examples{made}")
    where = "" if whole else " (in its first batch)"
    contents = {split: pair for split, pair in contents.items() if pair is not EMPTY}
    for split, (x, y) in contents.items():
        if x is not None and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            rows = x.reshape(len(x), -1) if x.dim() > 1 else x.reshape(-1, 1)
            bad = int((~torch.isfinite(rows)).any(1).sum())
            raise ConfigError(
                f"the {split} inputs hold NaN or infinite values{where} ({bad} of {len(rows)} examples): drop or impute "
                "them before training, e.g. keep the rows where numpy.isfinite(X).all(1), or numpy.nan_to_num(X)"
            )
        if y is not None and y.is_floating_point():
            raise ConfigError(
                f"the {split} labels are {y.dtype}{where}: give integer class indices (y.long()), or pass the arrays as "
                "data=(X, y), which accepts whole-number floats"
            )
        if y is not None and y.dtype != torch.bool and len(y) and int(y.min()) < 0:
            raise ConfigError(
                f"the {split} labels must be class indices 0..C-1 but hold {int(y.min())}{where}; map them to 0..C-1, "
                "e.g. y = numpy.unique(y, return_inverse=True)[1]"
            )
    labels = {split: set(torch.unique(y).tolist()) for split, (_, y) in contents.items() if y is not None}
    classes = getattr(data, "num_classes", None)
    if isinstance(classes, int):
        for split, present in labels.items():
            outside = [c for c in present if c >= classes]
            if outside:
                raise labels_outside(f"the {split} labels{where}", outside, classes)
    if not whole or "train" not in labels:
        return
    for split in ("val", "test"):
        only = labels.get(split, set()) - labels["train"]
        if only:
            raise ConfigError(
                f"label(s) {listed(only)} occur in the {split} split but never in the training split: the student cannot "
                "learn them. Split the data stratified by class (pass data=(X, y) and nbdistill does), or drop those examples"
            )
    if getattr(data, "num_classes_inferred", False) and isinstance(classes, int):
        absent = [c for c in range(classes) if c not in labels["train"]]
        if absent:
            raise labels_with_gaps(labels["train"], absent, classes)
