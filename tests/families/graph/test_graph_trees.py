"""Computation-tree codes: WL-style bottom-up ids against explicit trees and tree isomorphism."""

import itertools
import random

import networkx as nx
import pytest
import torch

from nbdistill.families.graph.trees import TreeCodes, explicit_tree_code, unique_rows


def random_graph(rng: random.Random, n: int, labels: int = 2, edge_labels: int = 2):
    """A random undirected graph: adjacency lists, node labels and a label per edge (both directions)."""
    edges = [(u, v) for u, v in itertools.combinations(range(n), 2) if rng.random() < 0.4]
    adjacency = [[] for _ in range(n)]
    edge_label = {}
    for u, v in edges:
        adjacency[u].append(v)
        adjacency[v].append(u)
        edge_label[(u, v)] = edge_label[(v, u)] = rng.randrange(edge_labels)
    node_label = [rng.randrange(labels) for _ in range(n)]
    return adjacency, node_label, edge_label


def as_tensors(adjacency, node_label, edge_label):
    pairs = [(u, v) for v, nbrs in enumerate(adjacency) for u in nbrs]
    edge_index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    return torch.tensor(node_label), edge_index, torch.tensor([edge_label[p] for p in pairs], dtype=torch.long)


def unrolled_tree(adjacency, node_label, edge_label, root: int, depth: int) -> nx.DiGraph:
    """The computation tree built node by node as a networkx graph (no canonical form involved)."""
    tree = nx.DiGraph()
    tree.add_node(0, label=node_label[root], root=True)
    frontier = [(0, root)]
    for _ in range(depth):
        nxt = []
        for tree_node, vertex in frontier:
            for u in adjacency[vertex]:
                child = tree.number_of_nodes()
                tree.add_node(child, label=node_label[u], root=False)
                tree.add_edge(tree_node, child, label=edge_label[(u, vertex)])
                nxt.append((child, u))
        frontier = nxt
    return tree


def isomorphic(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    def same(x, y):
        return x == y

    return nx.is_isomorphic(a, b, node_match=same, edge_match=same)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_codes_are_equal_exactly_when_the_explicit_trees_are_isomorphic(depth):
    rng = random.Random(depth)
    graphs = [random_graph(rng, rng.randint(3, 6)) for _ in range(6)]
    codes = TreeCodes(depth)  # one table shared by graphs coded one at a time
    roots = []
    for adjacency, node_label, edge_label in graphs:
        ids = codes.encode(*as_tensors(adjacency, node_label, edge_label)).tolist()
        for v in range(len(node_label)):
            roots.append(
                (
                    ids[v],
                    explicit_tree_code(adjacency, node_label, v, depth, edge_label),
                    unrolled_tree(adjacency, node_label, edge_label, v, depth),
                )
            )
    equal_pairs = 0
    for (id_a, canon_a, tree_a), (id_b, canon_b, tree_b) in itertools.combinations(roots, 2):
        assert (id_a == id_b) == (canon_a == canon_b) == isomorphic(tree_a, tree_b)
        equal_pairs += id_a == id_b
    assert equal_pairs > 0 and equal_pairs < len(roots) * (len(roots) - 1) // 2  # both outcomes were tested


def test_renumbering_the_nodes_moves_the_codes_with_them():
    rng = random.Random(7)
    adjacency, node_label, edge_label = random_graph(rng, 7)
    codes = TreeCodes(2)
    before = codes.encode(*as_tensors(adjacency, node_label, edge_label))
    perm = list(range(7))
    rng.shuffle(perm)  # node v becomes perm[v]; neighbour lists also come in another order
    new_adj = [[] for _ in range(7)]
    for v, nbrs in enumerate(adjacency):
        new_adj[perm[v]] = [perm[u] for u in reversed(nbrs)]
    new_labels = [0] * 7
    for v in range(7):
        new_labels[perm[v]] = node_label[v]
    new_edge_label = {(perm[u], perm[v]): lab for (u, v), lab in edge_label.items()}
    after = codes.encode(*as_tensors(new_adj, new_labels, new_edge_label))
    assert [int(after[perm[v]]) for v in range(7)] == before.tolist()


def test_one_label_changes_the_codes_of_the_trees_that_contain_it():
    path = [[1], [0, 2], [1, 3], [2]]
    edge_label = {(u, v): 0 for v, nbrs in enumerate(path) for u in nbrs}
    codes = TreeCodes(1)
    a = codes.encode(*as_tensors(path, [0, 0, 0, 0], edge_label))
    b = codes.encode(*as_tensors(path, [0, 0, 0, 1], edge_label))
    assert a[0] == a[3] != a[1] == a[2]  # ends and middles: two distinct depth-1 trees
    changed = (a != b).tolist()
    assert changed == [False, False, True, True]  # node 3 and its neighbour 2 see the new label
    edge_changed = {**edge_label, (0, 1): 1, (1, 0): 1}
    c = codes.encode(*as_tensors(path, [0, 0, 0, 0], edge_changed))
    assert (a != c).tolist() == [True, True, False, False]


def test_materialised_tree_has_the_code_and_the_size_of_the_original():
    rng = random.Random(3)
    adjacency, node_label, edge_label = random_graph(rng, 6, labels=3, edge_labels=2)
    codes = TreeCodes(2)
    ids = codes.encode(*as_tensors(adjacency, node_label, edge_label))
    for v, code in enumerate(ids.tolist()):
        labels, edge_index, edge_labels = codes.materialise(code)
        assert len(labels) == codes.tree_size(code) == unrolled_tree(adjacency, node_label, edge_label, v, 2).number_of_nodes()
        assert bool((edge_index[1] < edge_index[0]).all())  # child → parent, parents numbered first
        again = codes.encode(labels, edge_index, edge_labels)  # messages flow to the root only
        assert int(again[0]) == code


def test_unique_rows_agrees_with_torch_unique():
    rows = torch.randint(0, 4, (200, 5))
    first, inverse = unique_rows(rows)
    distinct, expected = torch.unique(rows, dim=0, return_inverse=True)
    assert len(first) == len(distinct)
    assert torch.equal(rows[first][inverse], rows)
    # the same partition of the rows
    assert torch.equal(expected[first][inverse], expected)


def test_bad_labels_and_depth_are_refused():
    with pytest.raises(ValueError, match="num_hops"):
        TreeCodes(0)
    with pytest.raises(ValueError, match="non-negative"):
        TreeCodes(1).encode(torch.tensor([0, -1]), torch.tensor([[0, 1], [1, 0]]))
