"""Mirage's mining: FP-growth, the selection thresholds, the distilled set and its model-agnostic property."""

import itertools
import random

import pytest
import torch

from nbdistill.families.graph.fpgrowth import TooManyItemsets, frequent_itemsets
from nbdistill.families.graph.mining import (
    TreeMiner,
    build_distilled_set,
    min_count,
    select_tree_sets,
    storage,
)
from nbdistill.families.graph.trees import TreeCodes
from nbdistill.models.gnn import GAT, GCN, GIN


def brute_force(transactions, min_support):
    items = sorted(set().union(*transactions)) if transactions else []
    found = {}
    for k in range(1, len(items) + 1):
        for subset in itertools.combinations(items, k):
            n = sum(1 for t in transactions if set(subset) <= t)
            if n >= min_support:
                found[frozenset(subset)] = n
    return found


@pytest.mark.parametrize("seed", range(5))
def test_fp_growth_finds_every_frequent_itemset_and_its_support(seed):
    rng = random.Random(seed)
    transactions = [{i for i in range(7) if rng.random() < 0.45} for _ in range(rng.randint(5, 25))]
    for min_support in (1, 2, 4):
        assert frequent_itemsets(transactions, min_support) == brute_force(transactions, min_support)
        capped = frequent_itemsets(transactions, min_support, max_size=2)
        assert capped == {s: n for s, n in brute_force(transactions, min_support).items() if len(s) <= 2}


def test_fp_growth_stops_past_the_limit():
    transactions = [set(range(12))] * 3  # every one of the 4095 subsets is frequent
    with pytest.raises(TooManyItemsets):
        frequent_itemsets(transactions, 2, limit=100)


def test_min_count_is_the_ceiling_of_the_share():
    assert min_count(0.3, 10) == 3  # 0.3 * 10 is 3.0000000000000004 in floating point
    assert min_count(0.25, 10) == 3
    assert min_count(0.01, 10) == 1


def miner_with(transactions, occurrences=None):
    """A TreeMiner whose transactions are given directly (tree ids as items)."""
    miner = TreeMiner(num_hops=1, num_classes=len(transactions))
    for c, trans in enumerate(transactions):
        miner.transactions[c] = [frozenset(t) for t in trans]
        counts = occurrences[c] if occurrences else {}
        for t in trans:
            for code in t:
                miner.occurrences[c][code] += counts.get(code, 1)
    return miner


def test_selection_keeps_sets_at_the_support_threshold_and_drops_shared_ones():
    # class 0: 10 graphs; {1, 2} in exactly 3, {3} in exactly 2; {9} in all of them
    class0 = [{1, 2, 9}] * 3 + [{3, 9}] * 2 + [{9}] * 5
    # class 1: 10 graphs; {9} is frequent here too, {4} only here
    class1 = [{4, 9}] * 6 + [{9}] * 4
    kept = select_tree_sets(miner_with([class0, class1]), min_support=0.3)
    assert kept[0] == {
        frozenset({1}): 3,
        frozenset({2}): 3,
        frozenset({1, 2}): 3,
        frozenset({1, 9}): 3,
        frozenset({2, 9}): 3,
        frozenset({1, 2, 9}): 3,
    }
    assert kept[1] == {frozenset({4}): 6, frozenset({4, 9}): 6}
    assert frozenset({9}) not in kept[0] and frozenset({9}) not in kept[1]  # frequent in both classes
    lower = select_tree_sets(miner_with([class0, class1]), min_support=0.2)
    assert lower[0][frozenset({3})] == 2 and lower[0][frozenset({3, 9})] == 2


def test_the_tree_count_filter_acts_before_the_sets_are_mined():
    class0 = [{1, 2}] * 4
    class1 = [{3}] * 4
    miner = miner_with([class0, class1], occurrences=[{1: 5, 2: 1}, {3: 1}])  # tree 1 seen 20 times, tree 2 4 times
    kept = select_tree_sets(miner, min_support=0.5, min_tree_count=10)
    assert kept == [{frozenset({1}): 4}, {}]


def small_graphs():
    """Three labelled graphs in two classes, as a PyG batch would give them."""
    edges = [[(0, 1), (1, 2)], [(0, 1), (1, 2), (2, 0)], [(0, 1), (1, 2), (2, 3)]]
    labels = [[0, 1, 0], [0, 1, 1], [0, 1, 0, 0]]
    x, src, dst, batch, offset = [], [], [], [], 0
    for g, (es, ls) in enumerate(zip(edges, labels)):
        for u, v in es:
            src += [u + offset, v + offset]
            dst += [v + offset, u + offset]
        x += ls
        batch += [g] * len(ls)
        offset += len(ls)
    node_label = torch.tensor(x)
    return node_label, torch.tensor([src, dst]), torch.tensor(batch), torch.tensor([0, 1, 0])


def test_miner_counts_trees_per_class_and_builds_one_graph_per_set():
    node_label, edge_index, batch, y = small_graphs()
    x = torch.nn.functional.one_hot(node_label, 2).float()
    miner = TreeMiner(num_hops=1, num_classes=2)
    miner.add(node_label, edge_index, batch, y, x)
    assert miner.class_sizes() == [2, 1]
    codes = miner.codes.encode(node_label, edge_index)  # same table: the same ids
    end0 = int(codes[0])  # label 0 with one neighbour labelled 1: in graph 0 (twice) and graph 2 (node 0)
    assert miner.occurrences[0][end0] == 3 and miner.support[0][end0] == 2
    kept = select_tree_sets(miner, min_support=1.0)
    distilled = build_distilled_set(miner, kept)
    assert distilled.classes == [0] * len(kept[0]) + [1] * len(kept[1])
    for graph, trees in zip(distilled.graphs, distilled.tree_sets):
        assert int(graph.root_mask.sum()) == len(trees)
        assert graph.num_nodes == sum(miner.codes.tree_size(t) for t in trees)
        assert torch.equal(graph.x, torch.nn.functional.one_hot(graph.x.argmax(1), 2).float())
    assert storage(distilled.graphs)["graphs"] == len(distilled.graphs)


def test_features_must_follow_the_labels():
    node_label, edge_index, batch, y = small_graphs()
    x = torch.randn(len(node_label), 3)
    with pytest.raises(ValueError, match="function of the node label"):
        TreeMiner(1, 2).add(node_label, edge_index, batch, y, x)


@pytest.mark.parametrize("model", [GIN, GAT])
def test_tree_roots_get_the_embedding_of_their_node(model):
    """Mirage's model-agnostic property: an L-layer sum- or attention-aggregating GNN gives the root of
    a node's depth-L computation tree (edges child → parent) the node's own embedding."""
    torch.manual_seed(0)
    node_label, edge_index, _, _ = small_graphs()
    x = torch.nn.functional.one_hot(node_label, 2).float()
    net = model(2, 8, 2, num_layers=2).eval()
    codes = TreeCodes(2)
    ids = codes.encode(node_label, edge_index)
    h = net.embed(x, edge_index)
    for v, code in enumerate(ids.tolist()):
        labels, tree_edges, _ = codes.materialise(code)
        root = net.embed(torch.nn.functional.one_hot(labels, 2).float(), tree_edges)[0]
        assert torch.allclose(root, h[v], atol=1e-6)


def test_gcn_roots_differ_because_leaves_lose_their_degree():
    """GCN weighs a message by 1/sqrt(deg(u) deg(v)); a tree's leaves have no children, so their degree
    differs from their node's and the root embedding is not the node's (the property needs sum/attention)."""
    torch.manual_seed(0)
    node_label, edge_index, _, _ = small_graphs()
    x = torch.nn.functional.one_hot(node_label, 2).float()
    net = GCN(2, 8, 2, num_layers=2).eval()
    codes = TreeCodes(2)
    code = int(codes.encode(node_label, edge_index)[1])
    labels, tree_edges, _ = codes.materialise(code)
    root = net.embed(torch.nn.functional.one_hot(labels, 2).float(), tree_edges)[0]
    assert not torch.allclose(root, net.embed(x, edge_index)[1], atol=1e-4)
