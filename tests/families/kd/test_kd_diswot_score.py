"""DisWOT's score (nbdistill.families.kd.pipelines.diswot_score): the two Gram distances by hand, the
official README's code re-implemented, and the errors of score_candidates."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.diswot_score import (
    DisWOTScore,
    TeacherReference,
    gaussian_init,
    prepared,
    relation_distance,
    score_candidates,
    semantic_distance,
)

TOL = 1e-12  # float64, the same operations in another order


# -- the official README's "Core Code", with its undefined `bsz` taken as the batch size -------------
def readme_batch_similarity(f_t, f_s):
    bsz = f_s.shape[0]
    f_s = f_s.view(f_s.shape[0], -1)
    f_t = f_t.view(f_t.shape[0], -1)
    G_s = F.normalize(torch.mm(f_s, torch.t(f_s)))
    G_t = F.normalize(torch.mm(f_t, torch.t(f_t)))
    G_diff = G_t - G_s
    return (G_diff * G_diff).view(-1, 1).sum() / (bsz * bsz)


def readme_channel_similarity(f_t, f_s):
    bsz, ch = f_s.shape[0], f_s.shape[1]
    f_s = f_s.view(bsz, ch, -1)
    f_t = f_t.view(bsz, ch, -1)
    emd_s = F.normalize(torch.bmm(f_s, f_s.permute(0, 2, 1)), dim=2)
    emd_t = F.normalize(torch.bmm(f_t, f_t.permute(0, 2, 1)), dim=2)
    G_diff = emd_s - emd_t
    return (G_diff * G_diff).view(bsz, -1).sum() / (ch * bsz)


def test_relation_distance_by_hand():
    f_t = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # G_t = I
    f_s = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)  # G_s rows -> (1, 1)/sqrt 2
    # ||I - [[a, a], [a, a]]||^2 with a = 1/sqrt 2 is 2((1 - a)^2 + a^2) = 4 - 2 sqrt 2; over B^2 = 4
    assert relation_distance(f_t, f_s).item() == pytest.approx(1 - math.sqrt(2) / 2, abs=TOL)


def test_relation_distance_is_zero_for_identical_scaled_or_padded_features():
    f = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert relation_distance(f, f).item() == 0.0
    assert relation_distance(f, 3.0 * f).item() == pytest.approx(0.0, abs=TOL)
    assert relation_distance(f, torch.cat([f, torch.zeros(6, 7, dtype=torch.float64)], 1)).item() == pytest.approx(0.0, abs=TOL)


def test_semantic_distance_by_hand():
    g_t = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # E_t rows: (1, 0), (0, 0)
    g_s = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # E_s rows: (a, a), (a, a)
    # (1 - a)^2 + a^2 + 2 a^2 = 3 - sqrt 2, over C K = 2
    assert semantic_distance(g_t, g_s).item() == pytest.approx((3 - math.sqrt(2)) / 2, abs=TOL)
    assert semantic_distance(g_t, g_t).item() == 0.0


def test_semantic_distance_of_different_widths_uses_the_common_channels():
    gen = torch.Generator().manual_seed(1)
    g_t, g_s = torch.randn(4, 6, dtype=torch.float64, generator=gen), torch.randn(4, 9, dtype=torch.float64, generator=gen)
    assert semantic_distance(g_t, g_s).item() == pytest.approx(semantic_distance(g_t, g_s[:, :6]).item(), abs=TOL)


def test_distances_match_the_official_readme_code_on_random_float64():
    gen = torch.Generator().manual_seed(2)
    for b, dt, ds, k, c in [(8, 5, 11, 10, 7), (17, 32, 3, 3, 16)]:
        f_t, f_s = torch.randn(b, dt, dtype=torch.float64, generator=gen), torch.randn(b, ds, dtype=torch.float64, generator=gen)
        g_t, g_s = torch.randn(k, c, dtype=torch.float64, generator=gen), torch.randn(k, c, dtype=torch.float64, generator=gen)
        assert relation_distance(f_t, f_s).item() == pytest.approx(readme_batch_similarity(f_t, f_s).item(), rel=TOL, abs=TOL)
        assert semantic_distance(g_t, g_s).item() == pytest.approx(readme_channel_similarity(g_t, g_s).item(), rel=TOL, abs=TOL)


def test_score_matches_the_readme_metrics_on_random_init_mlps():
    """The whole score against the README's relation_similarity_metric and semantic_similarity_metric
    (forward, CE backward, the fc layer's weight gradient) on the same Gaussian-initialised copies."""
    torch.manual_seed(0)
    teacher, student = nd.models.MLP(64, [48, 16], 10).double(), nd.models.MLP(64, [24, 16], 10).double()
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(12, 64, dtype=torch.float64, generator=gen), torch.randint(0, 10, (12,), generator=gen)
    got = TeacherReference(teacher, x, y, seed=5).score(student)

    t, s = prepared(teacher, 5), prepared(student, 6)
    t_feat, s_feat = t.net[:-1](x), s.net[:-1](x)
    F.cross_entropy(t.net[-1](t_feat), y).backward()
    F.cross_entropy(s.net[-1](s_feat), y).backward()
    relation = -readme_batch_similarity(t_feat.detach(), s_feat.detach()).item()
    semantic = -readme_channel_similarity(t.net[-1].weight.grad, s.net[-1].weight.grad).item()
    assert got.relation == pytest.approx(relation, rel=1e-10, abs=1e-12)
    assert got.semantic == pytest.approx(semantic, rel=1e-10, abs=1e-12)
    assert got.score == pytest.approx(relation + semantic, rel=1e-10, abs=1e-12)


def test_the_score_is_relation_plus_weighted_semantic():
    assert DisWOTScore(-0.5, -2.0).score == -2.5  # the official code's unweighted sum
    assert DisWOTScore(-0.5, -2.0, semantic_weight=0.25).score == -1.0


def test_gaussian_init_is_standard_normal_with_zero_biases():
    layer = gaussian_init(nn.Sequential(nn.Linear(256, 256), nn.BatchNorm1d(4)), torch.Generator().manual_seed(0))
    w = layer[0].weight.detach()
    assert abs(w.mean().item()) < 0.02 and abs(w.std().item() - 1.0) < 0.02  # 65536 draws: std error ~0.004
    assert layer[0].bias.abs().sum().item() == 0.0
    assert layer[1].weight.detach().eq(1).all() and layer[1].bias.detach().eq(0).all()


def _batch(n=16):
    gen = torch.Generator().manual_seed(4)
    return torch.randn(n, 64, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_score_candidates_is_seeded_and_leaves_the_candidates_untouched():
    teacher, batch = nd.zoo.teacher("digits-mlp"), _batch()
    torch.manual_seed(0)
    candidates = [nd.models.MLP(64, [8], 10), nd.models.MLP(64, [32, 16], 10)]
    before = [{k: v.clone() for k, v in c.state_dict().items()} for c in candidates]
    first, second = score_candidates(teacher, candidates, batch), score_candidates(teacher, candidates, batch)
    assert first == second and len(first) == 2
    assert all(s.relation <= 0 and s.semantic <= 0 for s in first)
    for c, state in zip(candidates, before):
        assert all(torch.equal(v, state[k]) for k, v in c.state_dict().items())


def test_a_trained_teacher_scores_differently_and_a_bad_init_is_refused():
    teacher, batch, candidates = nd.zoo.teacher("digits-mlp"), _batch(), [nd.models.MLP(64, [8], 10)]
    trained = score_candidates(teacher, candidates, batch, teacher_init="trained")
    assert trained == score_candidates(teacher, candidates, batch, teacher_init="trained")
    assert trained != score_candidates(teacher, candidates, batch)
    with pytest.raises(ConfigError, match=r"teacher_init must be one of \('random', 'trained'\), got 'zero'"):
        score_candidates(teacher, candidates, batch, teacher_init="zero")


def test_a_candidate_that_cannot_take_the_inputs_is_named_with_the_shapes():
    candidates = [nd.models.MLP(64, [8], 10), nd.models.MLP(32, [8], 10)]
    with pytest.raises(ConfigError, match=r"candidate 1 \(MLP\) cannot take the data's inputs of shape \(16, 64\)"):
        score_candidates(nd.zoo.teacher("digits-mlp"), candidates, _batch())


def test_a_candidate_with_the_wrong_outputs_or_no_linear_is_refused():
    teacher = nd.zoo.teacher("digits-mlp")
    with pytest.raises(ConfigError, match=r"candidate 0 \(MLP\) outputs \(16, 3\).*shape \(16, 10\)"):
        score_candidates(teacher, [nd.models.MLP(64, [8], 3)], _batch())
    with pytest.raises(ConfigError, match=r"candidate 0 \(Flatten\) has no nn.Linear layer"):
        score_candidates(teacher, [nn.Flatten()], _batch())
    with pytest.raises(ConfigError, match="non-empty list of networks"):
        score_candidates(teacher, [], _batch())
    with pytest.raises(ConfigError, match=r"candidate 0 \(str\) is not a torch.nn.Module"):
        score_candidates(teacher, ["MLP"], _batch())
