"""The SSL encoder shared by kd.simclr_v2 and kd.unfused: NT-Xent against a direct loop, the
augmentations, and a seeded, memoised pretraining."""

import math

import torch

from nbdistill.families.kd.pipelines import ssl_encoder
from nbdistill.families.kd.pipelines.ssl_encoder import augment, nt_xent, pretrain


def nt_xent_loop(z1, z2, tau):
    """SimCLR eq. 1 written out: 2N anchors, each with its positive over all 2N - 1 other views."""
    views = [v / v.norm() for v in torch.cat([z1, z2])]
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        sims = {k: float(views[i] @ views[k]) / tau for k in range(2 * n) if k != i}
        total += -math.log(math.exp(sims[positive]) / sum(math.exp(s) for s in sims.values()))
    return total / (2 * n)


def test_nt_xent_matches_a_direct_loop_in_float64():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    for tau in (0.1, 0.5, 1.0):
        assert abs(nt_xent(z1, z2, tau).item() - nt_xent_loop(z1, z2, tau)) < 1e-10


def test_nt_xent_is_small_for_identical_views_and_symmetric():
    g = torch.Generator().manual_seed(1)
    z = torch.eye(4, dtype=torch.float64) * 3 + 0.01 * torch.randn(4, 4, generator=g, dtype=torch.float64)
    other = torch.randn(4, 4, generator=g, dtype=torch.float64)
    assert nt_xent(z, z, 0.1) < nt_xent(z, other, 0.1)
    assert torch.allclose(nt_xent(z, other, 0.3), nt_xent(other, z, 0.3), atol=1e-12)


def test_augment_shifts_digits_within_the_padding_and_is_seeded():
    img = torch.zeros(1, 8, 8)
    img[0, 3, 4] = 1.0
    x = img.reshape(1, 64).repeat(50, 1)
    views = augment(x, torch.Generator().manual_seed(0), shift=1, noise=0.0, drop=0.0)
    assert views.shape == x.shape
    peaks = views.reshape(50, 8, 8).flatten(1).argmax(1)
    rows, cols = peaks // 8, peaks % 8
    assert set(rows.tolist()) <= {2, 3, 4} and set(cols.tolist()) <= {3, 4, 5}
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1  # the shifts differ across examples
    again = augment(x, torch.Generator().manual_seed(0), shift=1, noise=0.0, drop=0.0)
    assert torch.equal(views, again)
    images = augment(x.reshape(50, 1, 8, 8), torch.Generator().manual_seed(0), noise=0.0, drop=0.0)
    assert images.shape == (50, 1, 8, 8)


def test_pretraining_is_seeded_memoised_and_lowers_the_loss():
    x = torch.randn(40, 64, generator=torch.Generator().manual_seed(0))
    ssl_encoder._CACHE.clear()
    state = torch.random.get_rng_state()
    a, losses = pretrain(x, 16, 4, 0.5, seed=3, batch_size=20)
    assert torch.equal(state, torch.random.get_rng_state())  # the global random state is untouched
    assert losses[-1] < losses[0]
    ssl_encoder._CACHE.clear()
    b, again = pretrain(x, 16, 4, 0.5, seed=3, batch_size=20)  # recomputed: the same
    replayed = []
    c, cached = pretrain(x, 16, 4, 0.5, seed=3, batch_size=20, report=lambda e, v: replayed.append((e, v)))
    assert losses == again == cached and replayed == list(enumerate(losses, 1))
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r)
    clf = a.classifier(10)
    assert clf(x).shape == (40, 10)
    assert torch.equal(clf[0][1].weight, a.encoder[1].weight) and clf[0][1].weight is not a.encoder[1].weight
