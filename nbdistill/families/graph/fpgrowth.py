"""FP-growth: every itemset contained in at least ``min_count`` transactions.

Han, Pei & Yin, "Mining Frequent Patterns without Candidate Generation" (SIGMOD 2000). The
transactions are compressed into an FP-tree (each transaction's frequent items, most frequent
first, inserted as a path; shared prefixes share nodes and add their counts). For each frequent item
i, from the least frequent, the itemset ``suffix ∪ {i}`` is reported with i's count, and the paths
leading to i's nodes (its *conditional pattern base*, each weighted by the node's count) are mined
the same way with the suffix grown by i. Mirage uses the ``pyfpgrowth`` package; this is a
self-contained implementation of the same algorithm (checked against brute-force counting in the tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable


class TooManyItemsets(RuntimeError):
    """More frequent itemsets than the caller's ``limit``: the threshold is too low for the data."""


class _Node:
    __slots__ = ("children", "count", "item", "parent")

    def __init__(self, item: Hashable | None, parent: _Node | None):
        self.item = item
        self.count = 0
        self.parent = parent
        self.children: dict[Hashable, _Node] = {}


def frequent_itemsets(
    transactions: Iterable[Iterable[Hashable]],
    min_count: int,
    max_size: int = 0,
    limit: int | None = None,
) -> dict[frozenset, int]:
    """``{itemset: support}`` for every itemset with support (number of transactions containing it)
    of at least ``min_count``; ``max_size > 0`` stops at itemsets of that many items. Raises
    :class:`TooManyItemsets` once more than ``limit`` itemsets are found.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    database = [(tuple(set(t)), 1) for t in transactions]
    found: dict[frozenset, int] = {}
    _grow(database, frozenset(), min_count, max_size, limit, found)
    return found


def _grow(database, suffix: frozenset, min_count: int, max_size: int, limit, found: dict) -> None:
    counts: Counter = Counter()
    for items, weight in database:
        for item in items:
            counts[item] += weight
    frequent = {item: n for item, n in counts.items() if n >= min_count}
    if not frequent:
        return
    rank = {item: r for r, item in enumerate(sorted(frequent, key=lambda i: (-frequent[i], repr(i))))}
    root = _Node(None, None)
    header: dict[Hashable, list[_Node]] = {item: [] for item in frequent}
    for items, weight in database:
        node = root
        for item in sorted((i for i in items if i in rank), key=rank.__getitem__):
            child = node.children.get(item)
            if child is None:
                child = node.children[item] = _Node(item, node)
                header[item].append(child)
            child.count += weight
            node = child
    for item in sorted(frequent, key=rank.__getitem__, reverse=True):
        pattern = suffix | {item}
        found[pattern] = frequent[item]
        if limit is not None and len(found) > limit:
            raise TooManyItemsets(f"more than {limit} frequent itemsets")
        if max_size and len(pattern) >= max_size:
            continue
        conditional = []
        for node in header[item]:
            path = []
            parent = node.parent
            while parent is not None and parent.item is not None:
                path.append(parent.item)
                parent = parent.parent
            if path:
                conditional.append((tuple(path), node.count))
        _grow(conditional, pattern, min_count, max_size, limit, found)
