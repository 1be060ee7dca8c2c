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
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from ..core.errors import ConfigError
from ..core.module import as_pair
from .base import ArrayDataModule, SplitsMade, class_labels, input_features, user_stacklevel
from .graphs import GraphSetDataModule, NodeDataModule

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


class GraphList(GraphSetDataModule):
    """Graph classification over the user's own graphs (PyG ``Data``, one label each): split by class
    like :class:`GraphSetDataModule` (with a :class:`SplitsMade` warning), or as given in ``splits``."""

    def __init__(self, graphs: list, splits: dict[str, list] | None = None, num_classes: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self._graphs = graphs
        self._given = splits
        every = [g for part in (splits or {"train": graphs}).values() for g in part]
        self.num_node_features = int(every[0].x.shape[-1])
        self.num_classes = num_classes or 1 + max(int(g.y) for g in every)
        self.num_classes_inferred = num_classes is None

    def make_graphs(self) -> list:
        return self._graphs

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        if self._given is not None:
            from .sampling import EpochSeededSampler

            self._splits = dict(self._given)
            self._sampler = EpochSeededSampler(len(self._splits["train"]), self.seed)
            return
        super().setup(stage)
        sizes = {name: len(part) for name, part in self._splits.items()}
        warnings.warn(
            f"only a training split was given: nbdistill made val and test splits from the {len(self._graphs)} graphs, "
            f"stratified by class with seed {self.split_seed} (val {sizes['val']}, test {sizes['test']}; "
            f"{sizes['train']} left to train on). Pass data={{'train': [...], 'val': [...], 'test': [...]}} to choose them",
            SplitsMade,
            stacklevel=user_stacklevel(),
        )


class GraphNodes(NodeDataModule):
    """Node classification on the user's own graph (a PyG ``Data`` with ``train_mask``, ``val_mask``,
    ``test_mask``; missing masks are made from the nodes outside every given mask, stratified)."""

    def __init__(self, graph, num_classes: int | None = None, inductive: bool = False):
        super().__init__(inductive=inductive)
        self._given = graph
        labelled = graph.train_mask | graph.val_mask | graph.test_mask
        self.num_node_features = int(graph.x.shape[-1])
        self.num_classes = num_classes or 1 + int(graph.y[labelled].max())
        self.num_classes_inferred = num_classes is None

    def make_graph(self):
        return self._given


# -- reading what the user has ------------------------------------------------------------------
def _pyg_kind(obj: Any) -> str | None:
    """``"data"`` (one graph), ``"dataset"`` or ``None`` for an object that is not PyG's (or a subclass)."""
    if "torch_geometric" not in sys.modules:  # nothing can be a PyG object before PyG is imported
        return None
    from torch_geometric.data import Dataset as GraphDataset
    from torch_geometric.data.data import BaseData

    if isinstance(obj, GraphDataset):
        return "dataset"
    if isinstance(obj, BaseData):
        return "data"
    return None


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


def _graphs(items: Any, where: str) -> list:
    """The user's graphs checked and copied, each with ``y`` of shape ``[1]`` (int64)."""
    graphs = list(items)
    if not graphs:
        raise ConfigError(f"{where} holds no graphs")
    out, labels, widths = [], [], set()
    for i, g in enumerate(graphs):
        if _pyg_kind(g) != "data":
            raise ConfigError(f"{where}: item {i} is a {type(g).__name__}, not a PyG Data; give every graph as a Data")
        x, y = getattr(g, "x", None), getattr(g, "y", None)
        if x is None or getattr(g, "edge_index", None) is None:
            raise ConfigError(
                f"{where}: graph {i} has no node features x or no edge_index; give every graph x [nodes, features] "
                "(e.g. one-hot node labels: torch_geometric.transforms.OneHotDegree) and edge_index"
            )
        if y is None or torch.as_tensor(y).numel() != 1:
            shape = None if y is None else tuple(torch.as_tensor(y).shape)
            raise ConfigError(
                f"{where}: graph {i} has y of shape {shape}; graph classification needs one label per graph "
                "(for node labels, pass one Data with train_mask, val_mask and test_mask)"
            )
        copied = copy.copy(g)
        copied.x = x.float() if not x.is_floating_point() else x
        if copied.x.dim() == 1:
            copied.x = copied.x.reshape(-1, 1)
        widths.add(int(copied.x.shape[-1]))
        labels.append(torch.as_tensor(y).reshape(-1)[0])
        out.append(copied)
    if len(widths) > 1:
        raise ConfigError(f"{where}: the graphs' node features have different sizes {sorted(widths)}; give them all the same")
    for g, label in zip(out, class_labels(torch.stack(labels), f"{where}'s graph labels")):
        g.y = label.reshape(1)
    return out


def _node_graph(graph: Any, seed: int, fraction: float):
    """A copy of the user's node-classification graph with boolean train/val/test masks (made where missing)."""
    for name in ("x", "edge_index", "y"):
        if getattr(graph, name, None) is None:
            raise ConfigError(f"the graph has no {name}; a node-classification graph needs x, edge_index and y")
    n = graph.num_nodes
    if graph.y.numel() != n:
        raise ConfigError(
            f"the graph's y has {graph.y.numel()} value(s) for {n} nodes: for node classification give one label per "
            "node; for graph classification pass a list of graphs"
        )
    g = copy.copy(graph)
    g.x = g.x.float() if not g.x.is_floating_point() else g.x
    if g.y.dim() == 2 and g.y.shape[1] == 1:  # OGB's layout: labels as a column [N, 1]
        g.y = g.y.reshape(-1)
    masks = {}
    for split in ("train", "val", "test"):
        mask = getattr(graph, f"{split}_mask", None)
        if mask is None:
            continue
        mask = torch.as_tensor(mask)
        if mask.dim() == 2:
            raise ConfigError(f"{split}_mask has shape {tuple(mask.shape)} (several splits): pick one, e.g. {split}_mask[:, 0]")
        if mask.dtype != torch.bool and mask.numel() == n and bool(((mask == 0) | (mask == 1)).all()):
            mask = mask.bool()  # a 0/1 mask stored as integers (uint8, long)
        elif mask.dtype != torch.bool:  # node indices
            if mask.is_floating_point() or mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= n):
                raise ConfigError(
                    f"{split}_mask is neither a boolean mask of the {n} nodes nor node indices 0..{n - 1}: "
                    f"got {mask.dtype} values from {mask.min().item()} to {mask.max().item()}"
                )
            mask = torch.zeros(n, dtype=torch.bool).index_fill_(0, mask.long(), True)
        masks[split] = mask
    missing = [s for s in ("train", "val", "test") if s not in masks]
    if missing:
        taken = torch.zeros(n, dtype=torch.bool)
        for mask in masks.values():
            taken |= mask
        free = (~taken).nonzero().flatten()
        masks.update(_carve_nodes(g.y, free, missing, fraction, seed))
    labelled = masks["train"] | masks["val"] | masks["test"]
    y = g.y.clone().long() if not g.y.is_floating_point() else g.y.clone()
    y[labelled] = class_labels(g.y[labelled], "the node labels")
    g.y = y.long()
    for split, mask in masks.items():
        setattr(g, f"{split}_mask", mask)
    return g


def _carve_nodes(y: torch.Tensor, free: torch.Tensor, missing: list[str], fraction: float, seed: int) -> dict:
    """Masks for the ``missing`` splits from the ``free`` nodes that have a label, stratified by class
    with ``seed``, said in a :class:`SplitsMade` warning. Without a train mask, val and test take
    ``fraction`` of those nodes each and train the rest; otherwise the missing ones share them equally."""
    from sklearn.model_selection import train_test_split

    n = y.numel()
    free = free[y[free] >= 0] if not y.is_floating_point() else free[torch.isfinite(y[free]) & (y[free] >= 0)]
    labels = np.zeros(n, dtype=np.int64)
    labels[free.numpy()] = class_labels(y[free], "the node labels").numpy()
    shares = {s: (1 - 2 * fraction if s == "train" else fraction) for s in missing}
    if "train" not in missing:
        shares = {s: 1 / len(missing) for s in missing}
    idx, left, parts = free.numpy(), 1.0, {}
    try:
        for s in [s for s in missing if s != "train"][: len(missing) - 1]:
            idx, held = train_test_split(idx, test_size=shares[s] / left, stratify=labels[idx], random_state=seed)
            parts[s], left = held, left - shares[s]
    except ValueError as exc:
        raise ConfigError(
            f"cannot make stratified {', '.join(missing)} mask(s) from {len(free)} labelled nodes ({exc}); give the masks"
        ) from None
    last = next(s for s in missing if s not in parts)
    parts[last] = idx
    masks = {
        s: torch.zeros(n, dtype=torch.bool).index_fill_(0, torch.as_tensor(p, dtype=torch.long), True) for s, p in parts.items()
    }
    made = ", ".join(f"{s} {int(masks[s].sum())}" for s in ("train", "val", "test") if s in masks)
    warnings.warn(
        f"the graph has no {' or '.join(f'{s}_mask' for s in missing)}: nbdistill made them from the {len(free)} labelled "
        f"nodes in no given mask, stratified by class with seed {seed} ({made} nodes)",
        SplitsMade,
        stacklevel=user_stacklevel(),
    )
    return masks


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
    kind = _pyg_kind(data)
    if kind == "data":
        graph = _node_graph(data, seed, split_fraction)
        return GraphNodes(graph, num_classes=num_classes, inductive=inductive)
    if kind == "dataset" and len(data) == 1 and getattr(data[0], "y", None) is not None and data[0].y.numel() > 1:
        return GraphNodes(_node_graph(data[0], seed, split_fraction), num_classes=num_classes, inductive=inductive)
    graph_options = {"batch_size": batch_size or 32, "seed": seed, "split_seed": seed, "eval_batch_size": eval_batch_size}
    if kind == "dataset" or (isinstance(data, (list, tuple)) and data and _pyg_kind(data[0]) == "data"):
        graphs = _graphs(data, "the graphs")
        dm = GraphList(
            graphs, num_classes=num_classes, val_fraction=split_fraction, test_fraction=split_fraction, **graph_options
        )
        dm.setup()
        return dm
    if isinstance(data, Mapping):
        splits = _split_dict(data)
        if all(
            isinstance(v, (list, tuple)) and v and _pyg_kind(v[0]) == "data" or _pyg_kind(v) == "dataset" for v in splits.values()
        ):
            given = {name: _graphs(v, f"the {name} graphs") for name, v in splits.items()}
            if set(given) != {"train", "val", "test"}:
                raise ConfigError(
                    "a dict of graph splits needs 'train', 'val' and 'test'; or pass one list of graphs to have them made"
                )
            dm = GraphList(given["train"], splits=given, num_classes=num_classes, **graph_options)
            dm.setup()
            return dm
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
