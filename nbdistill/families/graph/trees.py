r"""Computation trees of message passing, and their canonical codes.

An L-layer message-passing GNN computes node v's embedding from v's *computation tree* of depth L:
the root is v, and the children of a tree node standing for u are one subtree of depth one less for
each neighbour of u (vertices repeat; it is the unrolled message passing, not a subgraph). Mirage
("Mirage: Model-agnostic Graph Distillation for Graph Classification", Gupta, Manchanda, Kodamana &
Ranu, ICLR 2024) counts these trees, so identical trees must get the same id.

:class:`TreeCodes` gives them ids bottom-up, level by level, the way Weisfeiler–Lehman refinement does,
never building a tree:

.. math::
    c_0(v) = \ell(v), \qquad
    c_l(v) = \mathrm{id}_l\Big(\ell(v),\ \big\{\!\big\{ (e(u, v), c_{l-1}(u)) : u \in N(v) \big\}\!\big\}\Big)

where :math:`\ell` is the node label, :math:`e` the edge label and :math:`\mathrm{id}_l` interns its
argument (the label and the *sorted* multiset) in a table: a new signature gets the next integer.
The table is exact, not a hash, so two nodes share :math:`c_L` if and only if their depth-L
computation trees are isomorphic as labelled rooted trees (induction on l: a rooted tree is its root
label and the multiset of its children's subtrees). The paper's code writes an AHU-style string per
explicitly built tree instead (``"1" + label + sorted children + "0"``); any injective canonical code
serves, and this one costs O(L·|E| log |E|) however large the trees grow. :func:`explicit_tree_code`
is the straightforward reference that builds each tree as nested tuples (used by the tests and the
benchmark). The table also keeps each id's definition, so :meth:`TreeCodes.materialise` rebuilds the
tree of an id as a graph for training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class TreeCodes:
    """Interning tables of computation-tree signatures, shared by every graph coded with it.

    Args:
        num_hops: the tree depth L (the GNN's number of layers).

    Ids are per level: ``definitions[l][id] = (node label, ((edge label, child id at level l-1), ...))``
    with the children sorted; level 0 ids are the node labels themselves.
    """

    def __init__(self, num_hops: int):
        if num_hops < 1:
            raise ValueError(f"num_hops must be at least 1, got {num_hops}")
        self.num_hops = num_hops
        self.definitions: list[list[tuple]] = [[] for _ in range(num_hops + 1)]
        self._ids: list[dict[tuple, int]] = [{} for _ in range(num_hops + 1)]

    def __len__(self) -> int:
        """Distinct depth-L trees seen so far."""
        return len(self.definitions[self.num_hops])

    def _intern(self, level: int, signature: tuple) -> int:
        table = self._ids[level]
        found = table.get(signature)
        if found is None:
            found = table[signature] = len(self.definitions[level])
            self.definitions[level].append(signature)
        return found

    def encode(
        self,
        node_label: torch.Tensor,
        edge_index: torch.Tensor,
        edge_label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The depth-L tree id of every node of a graph (or of a disjoint union of graphs).

        ``edge_index`` lists each undirected edge in both directions (PyG's convention); message
        u → v makes the u-subtree a child of v. Nodes are bucketed by in-degree so each bucket's
        sorted child lists form a rectangle that :func:`unique_rows` deduplicates; only the distinct
        signatures (few: tree frequencies are skewed) reach the Python interning table.
        """
        node_label = node_label.long().cpu()
        src, dst = edge_index.long().cpu()
        num_nodes = node_label.numel()
        edge_label = torch.zeros_like(src) if edge_label is None else edge_label.long().cpu()
        if edge_label.numel() and int(edge_label.min()) < 0 or node_label.numel() and int(node_label.min()) < 0:
            raise ValueError("node and edge labels must be non-negative integers")
        span = int(edge_label.max()) + 1 if edge_label.numel() else 1
        degree = torch.bincount(dst, minlength=num_nodes)
        codes = node_label
        for level in range(1, self.num_hops + 1):
            child = codes[src] * span + edge_label
            order = torch.argsort(dst * (int(child.max()) + 1 if child.numel() else 1) + child, stable=True)
            sorted_child = child[order]
            starts = torch.cumsum(degree, 0) - degree
            new = torch.empty(num_nodes, dtype=torch.long)
            for d in torch.unique(degree).tolist():
                nodes = (degree == d).nonzero().flatten()
                if d:
                    rows = sorted_child[starts[nodes, None] + torch.arange(d)]
                    rows = torch.cat([node_label[nodes, None], rows], 1)
                else:
                    rows = node_label[nodes, None]
                first, inverse = unique_rows(rows)
                ids = torch.tensor([self._intern(level, _signature(r, span)) for r in rows[first].tolist()], dtype=torch.long)
                new[nodes] = ids[inverse]
            codes = new
        return codes

    def materialise(self, code: int, level: int | None = None):
        """The tree of ``code`` as ``(node_labels, edge_index, edge_labels)``: node 0 is the root and
        edges point child → parent, so a message-passing GNN sends messages towards the root only.
        """
        level = self.num_hops if level is None else level
        labels: list[int] = []
        src: list[int] = []
        dst: list[int] = []
        edge_labels: list[int] = []
        stack = [(code, level, -1, 0)]
        while stack:
            node_code, node_level, parent, via = stack.pop()
            me = len(labels)
            if parent >= 0:
                src.append(me)
                dst.append(parent)
                edge_labels.append(via)
            if node_level == 0:
                labels.append(node_code)
                continue
            label, children = self.definitions[node_level][node_code]
            labels.append(label)
            stack.extend((child, node_level - 1, me, e) for e, child in reversed(children))
        return (
            torch.tensor(labels, dtype=torch.long),
            torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            torch.tensor(edge_labels, dtype=torch.long),
        )

    def tree_size(self, code: int, level: int | None = None, _memo: dict | None = None) -> int:
        """Number of nodes of the tree of ``code``, counted from the table without building the tree."""
        level = self.num_hops if level is None else level
        if level == 0:
            return 1
        memo = {} if _memo is None else _memo
        if (level, code) not in memo:
            children = self.definitions[level][code][1]
            memo[level, code] = 1 + sum(self.tree_size(c, level - 1, memo) for _, c in children)
        return memo[level, code]

    def describe(self, code: int, level: int | None = None, names: Sequence[str] | None = None) -> str:
        """A readable nested form of a tree: ``label(child, child, …)``, children sorted."""
        level = self.num_hops if level is None else level

        def name(label: int) -> str:
            return names[label] if names is not None and label < len(names) else str(label)

        if level == 0:
            return name(code)
        label, children = self.definitions[level][code]
        if not children:
            return name(label)
        return f"{name(label)}(" + ",".join(self.describe(c, level - 1, names) for _, c in children) + ")"


def unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)``: the index of one row of each distinct row of ``rows`` and, for every row,
    which distinct row it is; exact, like ``torch.unique(rows, dim=0)`` but with 1-D sorts only
    (each column is folded into a dense key: the pair (key so far, column) gets a new dense id).
    """
    key = torch.zeros(rows.shape[0], dtype=torch.long)
    for column in rows.t():
        column = column - column.min() if column.numel() else column
        key = torch.unique(key * (int(column.max()) + 1 if column.numel() else 1) + column, return_inverse=True)[1]
    count = int(key.max()) + 1 if key.numel() else 0
    first = torch.full((count,), rows.shape[0], dtype=torch.long)
    first.scatter_reduce_(0, key, torch.arange(rows.shape[0]), reduce="amin")
    return first, key


def _signature(row: list[int], span: int) -> tuple:
    label, children = row[0], row[1:]
    return (label, tuple((c % span, c // span) for c in children))


def explicit_tree_code(
    adjacency: Sequence[Sequence[int]],
    node_label: Sequence[int],
    root: int,
    depth: int,
    edge_label: dict[tuple[int, int], int] | None = None,
) -> tuple:
    """The depth-``depth`` computation tree of ``root`` built explicitly as nested tuples,
    ``(label, ((edge label, subtree), ...))`` with children sorted: an AHU canonical form whose size
    is the tree's (it grows like degree^depth). The reference :class:`TreeCodes` is checked against.

    ``adjacency[u]`` lists u's neighbours; ``edge_label[(u, v)]`` labels the message u → v (default 0).
    """
    label = node_label[root]
    if depth == 0:
        return (label, ())
    children = sorted(
        ((edge_label or {}).get((u, root), 0), explicit_tree_code(adjacency, node_label, u, depth - 1, edge_label))
        for u in adjacency[root]
    )
    return (label, tuple(children))
