"""The user's own PyG graphs as data modules, for :func:`~nbdistill.data.adapt.as_datamodule`: a
``Data`` with node labels (node classification, :class:`GraphNodes`), a list of ``Data`` with one label
each or a PyG ``Dataset`` (graph classification, :class:`GraphList`), or a dict of such splits. The
graphs are checked and copied here; masks and splits the user did not give are made (stratified by
class, seeded) and said in a :class:`~nbdistill.data.base.SplitsMade` warning.
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

from ..core.errors import ConfigError
from .base import SplitsMade, class_labels, user_stacklevel
from .graph_classification import GraphSetDataModule
from .node_classification import NodeDataModule
from .sampling import EpochSeededSampler


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


def pyg_kind(obj: Any) -> str | None:
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


def read_graphs(items: Any, where: str) -> list:
    """The user's graphs checked and copied, each with ``y`` of shape ``[1]`` (int64)."""
    graphs = list(items)
    if not graphs:
        raise ConfigError(f"{where} holds no graphs")
    out, labels, widths = [], [], set()
    for i, g in enumerate(graphs):
        if pyg_kind(g) != "data":
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


def node_graph(graph: Any, seed: int, fraction: float):
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


def graph_datamodule(
    data: Any,
    *,
    num_classes: int | None,
    batch_size: int | None,
    seed: int,
    split_fraction: float,
    eval_batch_size: int,
    inductive: bool,
) -> pl.LightningDataModule | None:
    """The data module for PyG ``data`` (a ``Data``, a PyG ``Dataset``, a list of ``Data``, or a dict
    ``{"train"|"val"|"test": graphs}`` with the split names already read); ``None`` for other data."""
    kind = pyg_kind(data)
    if kind == "data":
        return GraphNodes(node_graph(data, seed, split_fraction), num_classes=num_classes, inductive=inductive)
    if kind == "dataset" and len(data) == 1 and getattr(data[0], "y", None) is not None and data[0].y.numel() > 1:
        return GraphNodes(node_graph(data[0], seed, split_fraction), num_classes=num_classes, inductive=inductive)
    options = {"batch_size": batch_size or 32, "seed": seed, "split_seed": seed, "eval_batch_size": eval_batch_size}
    if kind == "dataset" or _is_graph_list(data):
        graphs = read_graphs(data, "the graphs")
        dm = GraphList(graphs, num_classes=num_classes, val_fraction=split_fraction, test_fraction=split_fraction, **options)
    elif isinstance(data, Mapping) and all(_is_graph_list(v) or pyg_kind(v) == "dataset" for v in data.values()):
        given = {name: read_graphs(v, f"the {name} graphs") for name, v in data.items()}
        if set(given) != {"train", "val", "test"}:
            raise ConfigError(
                "a dict of graph splits needs 'train', 'val' and 'test'; or pass one list of graphs to have them made"
            )
        dm = GraphList(given["train"], splits=given, num_classes=num_classes, **options)
    else:
        return None
    dm.setup()
    return dm


def _is_graph_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and pyg_kind(value[0]) == "data"
