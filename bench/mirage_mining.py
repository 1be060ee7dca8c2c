"""Mirage's tree mining: time against the number of graphs, and against building every tree explicitly.

    python bench/mirage_mining.py            # 100, 1 000 and 10 000 BA-motif graphs, depths 2 and 3
    python bench/mirage_mining.py --quick    # 100 and 1 000 graphs

For each size it times, in the same process and on the same graphs:

- ``codes``: :class:`~nbdistill.families.graph.mining.TreeMiner` (WL-style bottom-up ids, per-class
  counts and transactions), fed in batches of 500 graphs;
- ``explicit``: the straightforward reference, every node's computation tree built as nested tuples
  (:func:`~nbdistill.families.graph.trees.explicit_tree_code`) and counted in a dict;
- ``select``: FP-growth and the distilled set (threshold ``--min-support``) after the codes.

It prints the growth from one size to the next (linear mining grows 10× per 10× graphs) and the
speed-up of the codes over the explicit trees, and checks both find the same trees with the same counts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import torch


def make_graphs(n: int, seed: int = 0) -> list:
    from nbdistill.data.graphs import BAMotifs

    return BAMotifs(num_graphs=n, generator_seed=seed).make_graphs()


def timed(call, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def mine_codes(graphs, hops: int):
    from torch_geometric.loader import DataLoader

    from nbdistill.families.graph.mining import TreeMiner

    miner = TreeMiner(hops, 2)
    for b in DataLoader(graphs, batch_size=500):
        miner.add(b.node_label, b.edge_index, b.batch, b.y, b.x)
    return miner


def mine_explicit(graphs, hops: int):
    from nbdistill.families.graph.trees import explicit_tree_code

    ids: dict[tuple, int] = {}
    counts = [Counter(), Counter()]
    for g in graphs:
        labels = g.node_label.tolist()
        adjacency = [[] for _ in labels]
        for u, v in g.edge_index.t().tolist():
            adjacency[v].append(u)
        for root in range(len(labels)):
            tree = explicit_tree_code(adjacency, labels, root, hops)
            counts[int(g.y)][ids.setdefault(tree, len(ids))] += 1
    return ids, counts


def same_counts(miner, explicit) -> bool:
    ids, counts = explicit
    if len(ids) != len(miner.codes):
        return False
    return all(sorted(counts[c].values()) == sorted(miner.occurrences[c].values()) for c in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1 000 graphs only")
    parser.add_argument("--min-support", type=float, default=0.2)
    parser.add_argument("--hops", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]

    from nbdistill.families.graph.mining import (
        build_distilled_set,
        select_tree_sets,
        storage,
    )

    start = time.perf_counter()
    everything = make_graphs(sizes[-1])
    order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0)).tolist()
    print(
        f"made {len(everything)} BA-motif graphs in {time.perf_counter() - start:.1f} s "
        f"({sum(g.num_nodes for g in everything) / len(everything):.1f} nodes each)\n"
    )
    header = f"{'hops':>4} {'graphs':>7} {'codes s':>9} {'growth':>7} {'explicit s':>11} {'growth':>7} {'speed-up':>9} {'select s':>9} {'trees':>7} {'bytes ÷':>8} same"
    print(header)
    print("-" * len(header))
    for hops in args.hops:
        previous = None
        for n in sizes:
            graphs = [everything[i] for i in order[:n]]
            repeats = 3 if n <= 1000 else 1
            t_codes, miner = timed(lambda g=graphs, h=hops: mine_codes(g, h), repeats)
            t_explicit, explicit = timed(lambda g=graphs, h=hops: mine_explicit(g, h), repeats)
            t_select, distilled = timed(
                lambda m=miner: build_distilled_set(m, select_tree_sets(m, args.min_support, limit=200_000)), 1
            )
            ratio = storage(graphs)["bytes"] / max(storage(distilled.graphs)["bytes"], 1) if distilled.graphs else float("nan")
            growth = (f"{t_codes / previous[0]:6.1f}×", f"{t_explicit / previous[1]:6.1f}×") if previous else ("", "")
            print(
                f"{hops:>4} {n:>7} {t_codes:>9.3f} {growth[0]:>7} {t_explicit:>11.3f} {growth[1]:>7} "
                f"{t_explicit / t_codes:>8.1f}× {t_select:>9.3f} {len(miner.codes):>7} {ratio:>7.1f}× {same_counts(miner, explicit)}"
            )
            previous = (t_codes, t_explicit)
        print()


if __name__ == "__main__":
    main()
