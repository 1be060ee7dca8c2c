"""k-means and the PCA whitening of kd.unfused's pseudo-labeller."""

import torch

from nbdistill.families.kd.pipelines.kmeans import assign, kmeans, pca_whiten


def blobs(seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    truth = torch.arange(4).repeat_interleave(25)
    return centres[truth] + 0.5 * torch.randn(100, 2, generator=g), truth, centres


def test_kmeans_recovers_separable_clusters():
    x, truth, centres = blobs()
    found, labels, inertia = kmeans(x, 4, seed=0)
    # one-to-one: each true cluster maps to exactly one found cluster
    pairs = set(zip(truth.tolist(), labels.tolist()))
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4 and len({b for _, b in pairs}) == 4
    assert torch.cdist(found, centres).min(1).values.max() < 0.5
    assert abs(inertia - (x - found[labels]).pow(2).sum().item()) < 1e-3
    assert torch.equal(assign(x, found), labels)
    again = kmeans(x, 4, seed=0)
    assert torch.equal(again[1], labels)


def test_kmeans_keeps_every_cluster_non_empty():
    x = torch.cat([torch.zeros(10, 2), torch.ones(1, 2) * 5])
    _, labels, _ = kmeans(x, 3, seed=0)
    assert sorted(set(labels.tolist())) == [0, 1, 2]


def test_pca_whitening_gives_unit_rows_of_the_kept_dimensions():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0)) @ torch.diag(torch.tensor([5.0, 3, 1, 1, 0.5, 0.1]))
    z = pca_whiten(x, 3)
    assert z.shape == (50, 3)
    assert torch.allclose(z.norm(dim=1), torch.ones(50), atol=1e-5)
