r"""Mirage's distillation: count computation trees per class, mine frequent tree sets, build the set.

Mirage ("Mirage: Model-agnostic Graph Distillation for Graph Classification", Gupta, Manchanda,
Kodamana & Ranu, ICLR 2024; steps as in the authors' ``NCI1/graph-nci-finalize-reduce-curr.py``):

1. every node of every training graph is replaced by the canonical id of its depth-L computation
   tree (:class:`~nbdistill.families.graph.trees.TreeCodes`);
2. per class c, trees occurring fewer than ``min_tree_count`` times are dropped (the paper's
   ``freq_thr``; its counter starts at 1, so its NCI1 setting ``> 1`` keeps every tree seen once);
3. each graph of class c becomes a *transaction*, the set of its kept tree ids, and FP-growth finds
   every tree set contained in at least :math:`\lceil s \cdot n_c \rceil` of the :math:`n_c` graphs
   of class c (the paper gives absolute counts per class, e.g. 460 and 590 for NCI1; a fraction
   ``min_support`` = s carries over between data sets);
4. tree sets frequent in two classes are dropped (the paper: "frequent in both classes", binary
   tasks; with more classes, frequent in any other class);
5. each surviving set becomes one training graph labelled c: the disjoint union of its trees, edges
   pointing child → parent, with a mask marking the roots, which alone are pooled by the GNN.

The paper then picks the thresholds by validation over a few lowered steps; here they are
hyper-parameters of :class:`~nbdistill.families.graph.mirage.Mirage`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from ...core.errors import ConfigError
from .fpgrowth import frequent_itemsets
from .trees import TreeCodes


def node_labels(batch: Any) -> torch.Tensor:
    """Discrete node labels, which the miner hashes: ``batch.node_label``, else the index of one-hot ``batch.x``."""
    label = getattr(batch, "node_label", None)
    if label is not None:
        return label.long()
    x = batch.x
    if x.dim() != 2 or not bool(((x == 0) | (x == 1)).all()) or not bool((x.sum(1) == 1).all()):
        raise ConfigError(
            "Mirage hashes discrete node labels: give the graphs a `node_label` attribute or one-hot node features `x`"
        )
    return x.argmax(1)


def edge_labels(batch: Any) -> torch.Tensor | None:
    """Discrete edge labels, ``batch.edge_label``, or None (unlabelled edges)."""
    label = getattr(batch, "edge_label", None)
    return None if label is None else label.long()


class TreeMiner:
    """Counts depth-L computation trees per class over graphs fed batch by batch.

    Args:
        num_hops: tree depth L.
        num_classes: number of graph classes.
    """

    def __init__(self, num_hops: int, num_classes: int):
        self.codes = TreeCodes(num_hops)
        self.num_classes = num_classes
        #: per class: tree id → number of nodes (over all graphs of the class) rooted at that tree
        self.occurrences: list[Counter] = [Counter() for _ in range(num_classes)]
        #: per class: tree id → number of graphs containing the tree
        self.support: list[Counter] = [Counter() for _ in range(num_classes)]
        #: per class: each graph's set of tree ids
        self.transactions: list[list[frozenset]] = [[] for _ in range(num_classes)]
        #: node label → the node feature row it stands for (to rebuild features of distilled trees)
        self.label_features: dict[int, torch.Tensor] = {}
        self.edge_labelled = False

    @property
    def graphs_seen(self) -> int:
        return sum(len(t) for t in self.transactions)

    def class_sizes(self) -> list[int]:
        return [len(t) for t in self.transactions]

    def add(
        self,
        node_label: torch.Tensor,
        edge_index: torch.Tensor,
        batch: torch.Tensor,
        y: torch.Tensor,
        x: torch.Tensor | None = None,
        edge_label: torch.Tensor | None = None,
    ) -> None:
        """Add a batch of graphs (PyG's disjoint union: ``batch[v]`` is node v's graph, ``y`` per graph)."""
        node_label, batch, y = node_label.long().cpu(), batch.long().cpu(), y.long().cpu()
        if x is not None:
            self._remember_features(node_label, x.detach().cpu())
        self.edge_labelled = self.edge_labelled or edge_label is not None
        codes = self.codes.encode(node_label, edge_index, edge_label)
        span = len(self.codes)
        pairs, nodes = torch.unique(batch * span + codes, return_counts=True)
        graph, code = pairs // span, pairs % span
        graph_class = y[graph]
        for c in torch.unique(graph_class).tolist():
            mine = graph_class == c
            self.occurrences[c].update(_as_counts(code[mine], nodes[mine], span))
            self.support[c].update(_as_counts(code[mine], torch.ones_like(nodes[mine]), span))
        per_graph = torch.split(code, torch.bincount(graph, minlength=y.numel()).tolist())
        for g, trees in enumerate(per_graph):
            self.transactions[int(y[g])].append(frozenset(trees.tolist()))

    def _remember_features(self, node_label: torch.Tensor, x: torch.Tensor) -> None:
        labels, first = _first_index(node_label)
        for label, i in zip(labels.tolist(), first.tolist()):
            self.label_features.setdefault(label, x[i])
        if not len(x):
            return
        known = sorted(self.label_features)
        row = torch.zeros(known[-1] + 1, dtype=torch.long)
        row[known] = torch.arange(len(known))
        table = torch.stack([self.label_features[label] for label in known]).to(x.dtype)
        if not torch.equal(table[row[node_label]], x):
            raise ValueError(
                "node features must be a function of the node label (nodes with the same label must have "
                "the same features) for Mirage to rebuild the trees' features"
            )

    def top_trees(self, k: int) -> tuple[list[int], list[list[int]]]:
        """The ``k`` trees contained in most graphs (all classes together) and their support per class."""
        total: Counter = Counter()
        for s in self.support:
            total.update(s)
        ranked = [code for code, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
        return ranked, [[s.get(code, 0) for code in ranked] for s in self.support]


def _as_counts(codes: torch.Tensor, weights: torch.Tensor, span: int) -> dict[int, int]:
    total = torch.bincount(codes, weights=weights.double(), minlength=span)
    present = total.nonzero().flatten()
    return dict(zip(present.tolist(), total[present].long().tolist()))


def _first_index(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    distinct, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((len(distinct),), len(values), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(values)), reduce="amin")
    return distinct, first


def min_count(min_support: float, class_size: int) -> int:
    """Smallest number of graphs of a class of ``class_size`` a frequent tree set must lie in."""
    return max(1, math.ceil(min_support * class_size - 1e-9))


def select_tree_sets(
    miner: TreeMiner,
    min_support: float,
    min_tree_count: int = 1,
    max_set_size: int = 0,
    limit: int | None = None,
) -> list[dict[frozenset, int]]:
    """Per class, the tree sets frequent in that class and in no other (steps 2–4 of the module doc).

    Returns one ``{tree set: support}`` dict per class. Raises
    :class:`~nbdistill.families.graph.fpgrowth.TooManyItemsets` past ``limit`` sets in a class.
    """
    frequent = []
    for c in range(miner.num_classes):
        kept = {code for code, n in miner.occurrences[c].items() if n >= min_tree_count}
        transactions = [t & kept for t in miner.transactions[c]]
        threshold = min_count(min_support, len(miner.transactions[c]))
        frequent.append(frequent_itemsets(transactions, threshold, max_set_size, limit) if transactions else {})
    return [
        {s: n for s, n in mine.items() if not any(s in other for o, other in enumerate(frequent) if o != c)}
        for c, mine in enumerate(frequent)
    ]


@dataclass
class DistilledSet:
    """Mirage's distilled training set: one graph per kept tree set, and where each came from."""

    graphs: list  # torch_geometric.data.Data with x, edge_index, y, root_mask (and edge_label if labelled)
    tree_sets: list[frozenset]
    classes: list[int]


def build_distilled_set(miner: TreeMiner, tree_sets: list[dict[frozenset, int]]) -> DistilledSet:
    """One graph per tree set (step 5): its trees' disjoint union, edges child → parent, roots masked."""
    from torch_geometric.data import Data

    if not miner.label_features:
        raise ValueError("the miner saw no node features: pass x to TreeMiner.add")
    trees: dict[int, tuple] = {}
    graphs, sets, classes = [], [], []
    for c, mined in enumerate(tree_sets):
        for tree_set in sorted(mined, key=lambda s: (-mined[s], sorted(s))):
            labels, edges, edge_labels, roots, offset = [], [], [], [], 0
            for code in sorted(tree_set):
                if code not in trees:
                    trees[code] = miner.codes.materialise(code)
                node_label, edge_index, edge_label = trees[code]
                labels.append(node_label)
                edges.append(edge_index + offset)
                edge_labels.append(edge_label)
                roots.append(offset)
                offset += len(node_label)
            node_label = torch.cat(labels)
            root_mask = torch.zeros(offset, dtype=torch.bool)
            root_mask[roots] = True
            graph = Data(
                x=torch.stack([miner.label_features[int(label)] for label in node_label]),
                edge_index=torch.cat(edges, 1),
                y=torch.tensor([c]),
                root_mask=root_mask,
            )
            if miner.edge_labelled:
                graph.edge_label = torch.cat(edge_labels)
            graphs.append(graph)
            sets.append(tree_set)
            classes.append(c)
    return DistilledSet(graphs, sets, classes)


#: What training on a graph needs, hence what a set of graphs is measured by.
STORED = ("x", "edge_index", "edge_label", "y", "root_mask")


def storage(graphs) -> dict[str, int]:
    """Graphs, nodes, edges and bytes (of the attributes in :data:`STORED`) of a set of graphs."""
    nodes = edges = size = 0
    for g in graphs:
        nodes += int(g.num_nodes)
        edges += int(g.edge_index.shape[1])
        size += sum(v.numel() * v.element_size() for k in STORED if isinstance(v := getattr(g, k, None), torch.Tensor))
    return {"graphs": len(graphs), "nodes": nodes, "edges": edges, "bytes": size}
