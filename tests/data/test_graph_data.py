"""The offline graph data sets: deterministic, balanced, the promised structure, clear errors."""

import pytest
import torch

import nbdistill as nd
from nbdistill.data.graphs import SBM, BAMotifs, KarateClub, LabelledMotifs


def test_ba_motifs_are_balanced_deterministic_and_labelled_by_degree():
    a, b = BAMotifs(num_graphs=20), BAMotifs(num_graphs=20)
    graphs = a.make_graphs()
    assert [int(g.y) for g in graphs] == [0] * 10 + [1] * 10
    assert all(torch.equal(g.edge_index, h.edge_index) for g, h in zip(graphs, b.make_graphs()))
    for g in graphs:
        assert g.num_nodes == 25 + 5  # the BA tree and the motif
        degree = torch.bincount(g.edge_index[0], minlength=g.num_nodes).clamp(max=a.max_degree)
        assert torch.equal(g.node_label, degree) and torch.equal(g.x.argmax(1), degree)
    for g in graphs:  # the motif is the last 5 nodes, hung on the BA graph by one edge
        inside = (g.edge_index >= 25).sum(0)
        assert int((inside == 2).sum()) == 2 * (6 if int(g.y) == 0 else 5) and int((inside == 1).sum()) == 2
    other = BAMotifs(num_graphs=20, generator_seed=1).make_graphs()
    assert not all(torch.equal(g.edge_index, h.edge_index) for g, h in zip(graphs, other))


def test_labelled_motifs_share_the_label_multiset_but_not_the_arrangement():
    graphs = LabelledMotifs(num_graphs=10, base_nodes=12).make_graphs()
    for g in graphs:
        motif = g.node_label[-5:]
        assert sorted(motif.tolist()) == [0, 0, 1, 1, 2]
        assert tuple(motif.tolist()) == LabelledMotifs.MOTIF_LABELS[int(g.y)]


def test_graph_splits_are_stratified_and_disjoint():
    data = BAMotifs(num_graphs=40, batch_size=8)
    data.setup()
    sizes = {s: len(data.graphs(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 24, "val": 8, "test": 8}
    for split, size in sizes.items():
        assert sum(int(g.y) for g in data.graphs(split)) == size // 2
    batch = next(iter(data.train_dataloader()))
    assert batch.num_graphs == 8 and batch.x.shape[1] == data.num_node_features


def test_sbm_has_the_requested_homophily_degree_and_masks():
    data = SBM(num_nodes=800, homophily=0.9, avg_degree=8.0)
    g = data.graph
    same = (g.y[g.edge_index[0]] == g.y[g.edge_index[1]]).float().mean().item()
    assert same == pytest.approx(0.9, abs=0.03)
    assert g.num_edges / g.num_nodes == pytest.approx(8.0, rel=0.1)
    assert int(g.train_mask.sum()) == 4 * 20 and int(g.val_mask.sum()) == 4 * 30
    assert not bool((g.train_mask & g.val_mask).any() or (g.val_mask & g.test_mask).any())
    assert bool((g.train_mask | g.val_mask | g.test_mask).all()) and bool(g.obs_mask.all())
    inductive = SBM(num_nodes=800, inductive=True).graph
    assert torch.equal(inductive.obs_mask, ~inductive.test_mask)


def test_karate_club_ships_with_pyg():
    g = KarateClub(val_size=10).graph
    assert g.num_nodes == 34 and int(g.train_mask.sum()) == 4
    assert int(g.val_mask.sum()) == 10 and int(g.test_mask.sum()) == 20


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BAMotifs(num_graphs=7), "even number"),
        (lambda: LabelledMotifs(num_labels=2), "num_labels"),
        (lambda: SBM(homophily=1.5), "homophily"),
        (lambda: BAMotifs(val_fraction=0.6, test_fraction=0.5), "sum below 1"),
        (lambda: SBM(num_nodes=40, train_per_class=20).graph, "too few"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(nd.ConfigError, match=message):
        make()


def test_sbm_edges_match_a_bernoulli_per_pair():
    """The sparse sampler against the definition: each pair an edge with its blocks' probability."""
    from nbdistill.data.graphs import sbm_edges

    torch.manual_seed(0)
    full = sbm_edges([5, 7], torch.ones(2, 2))  # p = 1: every pair, both directions, no self loops
    assert full.shape[1] == 12 * 11 and not bool((full[0] == full[1]).any())
    assert {tuple(e) for e in full.t().tolist()} == {(i, j) for i in range(12) for j in range(12) if i != j}
    assert sbm_edges([5, 7], torch.zeros(2, 2)).shape == (2, 0)
    # empirical edge frequencies per block pair over many draws, against p
    sizes, probs = [30, 20], torch.tensor([[0.2, 0.05], [0.05, 0.4]])
    counts = torch.zeros(50, 50)
    draws = 400
    for _ in range(draws):
        e = sbm_edges(sizes, probs)
        assert torch.equal(torch.sort(e[0] * 50 + e[1]).values.unique(), torch.sort(e[0] * 50 + e[1]).values)  # no duplicates
        counts[e[0], e[1]] += 1
    assert torch.equal(counts, counts.t())  # undirected
    freq = counts / draws
    block = torch.tensor([0] * 30 + [1] * 20)
    off_diagonal = ~torch.eye(50, dtype=torch.bool)
    for a in (0, 1):
        for b in (0, 1):
            cell = (block[:, None] == a) & (block[None, :] == b) & off_diagonal
            assert freq[cell].mean().item() == pytest.approx(float(probs[a, b]), abs=0.01)
    # each pair on its own, not only on average: the within-block frequencies spread as Binomial(400, p)
    within = freq[(block[:, None] == 1) & (block[None, :] == 1) & off_diagonal]
    assert within.std().item() == pytest.approx((0.4 * 0.6 / draws) ** 0.5, rel=0.2)


def test_a_large_sbm_is_cheap():
    """In a fresh process (its peak memory is its own): 20 000 nodes within a few hundred MiB of
    what importing torch and PyG takes; listing every pair, as PyG's sampler does, takes ~6 GB."""
    import subprocess
    import sys

    code = (
        "import resource, torch, torch_geometric\n"
        "from nbdistill.data.graphs import SBM\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "g = SBM(num_nodes=20_000, avg_degree=10.0).graph\n"
        "print(g.num_edges / g.num_nodes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    degree, grown_mib = float(out[0]), float(out[1])
    assert degree == pytest.approx(10.0, rel=0.05)
    assert grown_mib < 300
