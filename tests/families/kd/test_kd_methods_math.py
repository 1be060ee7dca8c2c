"""The KD methods' losses against their math: hand computations, identities and second implementations."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy

from nbdistill.core.divergence import kl_divergence
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd import losses
from nbdistill.families.kd.features import PENULTIMATE, capture
from nbdistill.families.kd.heads import HintRegressor
from nbdistill.families.kd.quantize import quantize, quantize_ste, quantized_size_bits
from nbdistill.models import MLP
from nbdistill.models.moe import MoEMLP, load_balancing_loss


def _logits(b=6, c=5, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, c, generator=g, dtype=torch.float64) for _ in range(2))


def _labels(b, c, seed=0):
    return torch.randint(0, c, (b,), generator=torch.Generator().manual_seed(seed))


# -- DKD --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dkd_with_beta_one_minus_teacher_target_prob_is_hinton_kd(temperature):
    zs, zt = _logits(8, 6, seed=1, scale=3.0)
    y = _labels(8, 6, seed=1)
    p_target = torch.softmax(zt / temperature, -1).gather(1, y[:, None]).squeeze(1)
    dkd = losses.decoupled_kd(zs, zt, y, temperature, alpha=1.0, beta=1 - p_target, ce_weight=0.0)["loss"]
    hinton = losses.hinton_kd(zs, zt, y, temperature, alpha=0.0)["kd"]
    assert torch.allclose(dkd, hinton, rtol=1e-12, atol=1e-12)
    tckd, nckd = losses.dkd_parts(zs, zt, y, temperature)
    per_sample = temperature**2 * kl_divergence(zt, zs, temperature)
    assert torch.allclose(tckd + (1 - p_target) * nckd, per_sample, rtol=1e-12, atol=1e-12)


def test_dkd_parts_by_hand():
    zs = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    zt = torch.tensor([[0.0, 1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1])
    ps, pt = (torch.softmax(z, -1)[0].numpy() for z in (zs, zt))
    tckd = entropy([pt[1], 1 - pt[1]], [ps[1], 1 - ps[1]])
    nckd = entropy(pt[[0, 2]] / pt[[0, 2]].sum(), ps[[0, 2]] / ps[[0, 2]].sum())
    got_t, got_n = losses.dkd_parts(zs, zt, y, temperature=1.0)
    assert got_t.item() == pytest.approx(tckd, rel=1e-12) and got_n.item() == pytest.approx(nckd, rel=1e-12)


def test_dkd_total_weights_and_stays_finite_on_huge_logits():
    zs, zt = _logits(5, 4, seed=2, scale=200.0)
    y = _labels(5, 4, seed=2)
    out = losses.decoupled_kd(zs, zt, y, 4.0, alpha=2.0, beta=3.0, ce_weight=0.5, warmup_factor=0.25)
    tckd, nckd = losses.dkd_parts(zs, zt, y, 4.0)
    expected = 0.5 * F.cross_entropy(zs, y) + 0.25 * (2.0 * tckd + 3.0 * nckd).mean()
    assert torch.isfinite(out["loss"]) and torch.allclose(out["loss"], expected)


# -- PLD --------------------------------------------------------------------------------------------
def test_teacher_optimal_order_puts_label_first_then_teacher_order():
    zt = torch.tensor([[0.1, 3.0, -1.0, 2.0], [5.0, 4.0, 3.0, 2.0]])
    y = torch.tensor([2, 3])
    assert losses.teacher_optimal_order(zt, y).tolist() == [[2, 1, 3, 0], [3, 0, 1, 2]]


def test_pld_with_one_hot_weights_is_cross_entropy():
    zs, zt = _logits(7, 5, seed=3)
    y = _labels(7, 5, seed=3)
    order = losses.teacher_optimal_order(zt, y)
    weights = torch.zeros(7, 5, dtype=torch.float64)
    weights[:, 0] = 1.0
    nll = losses.weighted_plackett_luce_nll(zs.gather(1, order), weights)
    assert torch.allclose(nll, F.cross_entropy(zs, y, reduction="none"), rtol=1e-12)


def test_pld_is_invariant_to_adding_a_constant_to_the_logits():
    zs, zt = _logits(6, 5, seed=4)
    y = _labels(6, 5, seed=4)
    shift = torch.tensor([[3.0], [-7.0], [0.5], [100.0], [-0.1], [2.0]], dtype=torch.float64)
    a = losses.plackett_luce_distillation(zs, zt, y, 4.0)["loss"]
    b = losses.plackett_luce_distillation(zs + shift, zt - shift, y, 4.0)["loss"]
    assert torch.allclose(a, b, rtol=1e-12)


def test_pld_matches_brute_force_plackett_luce_for_three_classes():
    s = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    w = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    worth = s.exp().tolist()

    def stage_probs(perm):  # probability of each successive choice among the classes left
        return [worth[perm[k]] / sum(worth[c] for c in perm[k:]) for k in range(3)]

    perms = list(itertools.permutations(range(3)))
    assert sum(math.prod(stage_probs(p)) for p in perms) == pytest.approx(1.0, abs=1e-12)
    for perm in perms:
        expected = -sum(wk * math.log(pk) for wk, pk in zip(w.tolist(), stage_probs(perm)))
        got = losses.weighted_plackett_luce_nll(s[list(perm)][None], w[None]).item()
        assert got == pytest.approx(expected, rel=1e-12)
    # unweighted, the loss is minus the log-probability of the whole ranking
    perm = (2, 0, 1)
    full = losses.weighted_plackett_luce_nll(s[list(perm)][None], torch.ones(1, 3, dtype=torch.float64)).item()
    assert full == pytest.approx(-math.log(math.prod(stage_probs(perm))), rel=1e-12)
    # and the full PLD picks the teacher-optimal ranking with the teacher's softmax as weights
    zt = torch.tensor([[1.0, 0.2, 2.5]], dtype=torch.float64)
    q = torch.softmax(zt[0] / 2.0, -1).tolist()
    order = (1, 2, 0)  # label 1 first, then 2 (logit 2.5) and 0 (logit 1.0)
    expected = -sum(q[c] * math.log(p) for c, p in zip(order, stage_probs(order)))
    got = losses.plackett_luce_distillation(s[None], zt, torch.tensor([1]), temperature=2.0)["loss"].item()
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_pld_is_convex_in_the_student_logits(seed):
    _, zt = _logits(1, 6, seed=seed)
    s = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(10 + seed)) * 3
    y = torch.tensor([seed])
    hessian = torch.autograd.functional.hessian(lambda v: losses.plackett_luce_distillation(v[None], zt, y, 4.0)["loss"], s)
    assert torch.allclose(hessian, hessian.T, atol=1e-12)
    assert torch.linalg.eigvalsh(hessian).min() > -1e-10


# -- OFA --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_ofa_with_eps_one_is_cross_entropy_against_teacher_soft_labels(temperature):
    zs, zt = _logits(6, 4, seed=5)
    y = _labels(6, 4, seed=5)
    pt = torch.softmax(zt / temperature, -1)
    soft_ce = -(pt * F.log_softmax(zs / temperature, -1)).sum(-1).mean()
    assert torch.allclose(losses.ofa_loss(zs, zt, y, eps=1.0, temperature=temperature), soft_ce, rtol=1e-12)


def test_ofa_weights_by_hand_and_non_negative():
    p = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    w = losses.ofa_target_weights(p, torch.tensor([0]), eps=2.0)
    assert torch.allclose(w, torch.tensor([[1.25, 0.09, 0.04]], dtype=torch.float64))
    _, zt = _logits(50, 7, seed=6, scale=4.0)
    probs = torch.softmax(zt, -1)
    for eps in (0.2, 0.5, 1.0, 1.5, 3.0):
        assert (losses.ofa_target_weights(probs, _labels(50, 7, seed=6), eps) >= 0).all()


def test_one_for_all_total_adds_stage_terms():
    zs, zt = _logits(5, 4, seed=7)
    z1, _ = _logits(5, 4, seed=8)
    y = _labels(5, 4, seed=7)
    out = losses.one_for_all_kd(zs, [z1, zs], zt, y, eps=1.5, gt_weight=0.5, kd_weight=2.0, ofa_weight=3.0)
    ofa = lambda z: losses.ofa_loss(z, zt, y, 1.5)  # noqa: E731
    expected = 0.5 * F.cross_entropy(zs, y) + 2.0 * ofa(zs) + 3.0 * (ofa(z1) + ofa(zs))
    assert torch.allclose(out["loss"], expected, rtol=1e-12)


# -- FitNets ------------------------------------------------------------------------------------
def test_hint_loss_by_hand_and_its_gradient():
    r = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    h = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    loss = losses.hint_loss(r, h)
    assert loss.item() == pytest.approx((0.5 * 5 + 0.5 * 25) / 2)
    loss.backward()
    assert torch.allclose(r.grad, (r.detach() - h) / 2)


def test_hint_regressor_reaches_the_hint_shape():
    conv = HintRegressor((4, 6, 6), (8, 4, 4))
    assert conv.conv and conv(torch.zeros(2, 4, 6, 6)).shape == (2, 8, 4, 4) and conv.map.kernel_size == (3, 3)
    assert HintRegressor((8,), (32, 2, 2))(torch.zeros(3, 8)).shape == (3, 32, 2, 2)
    assert HintRegressor((4, 2, 2), (8, 4, 4))(torch.zeros(3, 4, 2, 2)).shape == (3, 8, 4, 4)


# -- MI-alpha ---------------------------------------------------------------------------------------
def _scores(k=6, seed=9, scale=2.0):
    return scale * torch.randn(k, k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_mi_alpha_one_is_infonce_and_at_most_log_k():
    for seed in range(5):
        s = _scores(seed=seed)
        k = s.shape[0]
        infonce = math.log(k) - F.cross_entropy(s.T, torch.arange(k))  # softmax over the students of each teacher
        got = losses.mi_alpha_bound(s, log_baseline=3.0, alpha=1.0)
        assert torch.allclose(got, infonce, rtol=1e-12) and got <= math.log(k)
    perfect = 50 * torch.eye(8, dtype=torch.float64)
    assert losses.mi_alpha_bound(perfect, 0.0, 1.0).item() == pytest.approx(math.log(8), abs=1e-12)


def test_mi_alpha_zero_is_nwj_with_log_baseline_one():
    s = _scores(seed=11)
    k = s.shape[0]
    off = ~torch.eye(k, dtype=torch.bool)
    nwj = s.diagonal().mean() - math.exp(-1) * s[off].exp().mean()
    assert torch.allclose(losses.mi_alpha_bound(s, log_baseline=1.0, alpha=0.0), nwj, rtol=1e-12)


def test_mi_alpha_by_hand_for_two_pairs():
    f = [[1.0, 0.5], [-0.2, 2.0]]  # f[i][j] = critic(student i, teacher j)
    alpha, log_q = 0.3, 0.4
    q = math.exp(log_q)
    joint = marginal = 0.0
    for j in range(2):
        m = (math.exp(f[0][j]) + math.exp(f[1][j])) / 2
        joint += (f[j][j] - math.log(alpha * m + (1 - alpha) * q)) / 2
        i = 1 - j  # the one student independent of teacher j is the whole K − 1 sample
        marginal += math.exp(f[i][j]) / (alpha * math.exp(f[i][j]) + (1 - alpha) * q) / 2
    expected = 1 + joint - marginal
    got = losses.mi_alpha_bound(torch.tensor(f, dtype=torch.float64), log_q, alpha).item()
    assert got == pytest.approx(expected, rel=1e-12)


# -- self-distillation ------------------------------------------------------------------------------
def test_self_distillation_without_exits_is_the_task_loss():
    z, _ = _logits(5, 4, seed=12)
    y = _labels(5, 4, seed=12)
    out = losses.self_distillation(z, torch.randn(5, 3, dtype=torch.float64), [], [], y)
    assert torch.allclose(out["loss"], F.cross_entropy(z, y))


def test_self_distillation_terms_vanish_when_exits_equal_the_deepest():
    z, _ = _logits(5, 4, seed=13)
    feature = torch.randn(5, 3, dtype=torch.float64)
    y = _labels(5, 4, seed=13)
    out = losses.self_distillation(z, feature, [z.clone(), z.clone()], [feature.clone()] * 2, y, alpha=0.3)
    assert out["exit_kd"].abs() < 1e-12 and out["exit_hint"] == 0
    assert torch.allclose(out["loss"], (1 + 2 * 0.7) * F.cross_entropy(z, y))


def test_self_distillation_by_hand_and_deepest_is_a_stopped_teacher():
    z, z1 = _logits(4, 3, seed=14)
    z.requires_grad_(True)
    f, f1 = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    y = _labels(4, 3, seed=14)
    T, a, lam = 3.0, 0.4, 0.05
    out = losses.self_distillation(z, f, [z1], [f1], y, T, a, lam)
    pt = torch.softmax(z.detach() / T, -1).numpy()
    ps = torch.softmax(z1 / T, -1).numpy()
    kl = np.mean([entropy(pt[i], ps[i]) for i in range(4)])
    hint = ((f1 - f) ** 2).sum(1).mean()
    expected = F.cross_entropy(z, y) + (1 - a) * F.cross_entropy(z1, y) + a * T**2 * kl + lam * hint
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-10)
    z1.requires_grad_(True)
    out = losses.self_distillation(z, f, [z1], [f1], y, T, a, lam)
    (out["exit_kd"] + out["exit_hint"]).backward()
    assert z.grad is None and torch.count_nonzero(z1.grad) > 0


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_self_distillation_weights_the_deepest_ce_by_one_whatever_alpha(alpha):
    """BYOT's code adds CE(deepest) with weight 1 (the paper's sum over all C exits would give 1 − α)."""
    z, z1 = _logits(4, 3, seed=15)
    z.requires_grad_(True)
    f, f1 = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    y = _labels(4, 3, seed=15)
    out = losses.self_distillation(z, f, [z1], [f1], y, 3.0, alpha, 0.03)
    (grad,) = torch.autograd.grad(out["loss"], z)
    (expected,) = torch.autograd.grad(F.cross_entropy(z, y), z)
    assert torch.allclose(grad, expected, rtol=1e-12, atol=0)


# -- Switch (MoE teacher) distillation --------------------------------------------------------------
def test_switch_distillation_is_hinton_at_t1_plus_teacher_entropy():
    zs, zt = _logits(6, 5, seed=15)
    y = _labels(6, 5, seed=15)
    lam = 0.25
    out = losses.switch_distillation(zs, zt, y, lam)
    h_teacher = np.mean([entropy(p) for p in torch.softmax(zt, -1).numpy()])
    hinton = losses.hinton_kd(zs, zt, y, temperature=1.0, alpha=1 - lam)["loss"]
    assert out["loss"].item() == pytest.approx(hinton.item() + lam * h_teacher, rel=1e-12)
    mixed = lam * torch.softmax(zt, -1) + (1 - lam) * F.one_hot(y, 5)
    assert torch.allclose(out["loss"], F.cross_entropy(zs, mixed), rtol=1e-12)
    assert torch.allclose(losses.switch_distillation(zs, zt, y, 0.0)["loss"], F.cross_entropy(zs, y))


def test_moe_routing_and_balance_loss():
    probs = torch.full((8, 4), 0.25)
    weights = torch.zeros(8, 4)
    weights[torch.arange(8), torch.arange(8) % 4] = 0.25  # a uniform load
    assert load_balancing_loss(probs, weights, top_k=1).item() == pytest.approx(1.0)
    skew = torch.zeros(8, 4)
    skew[:, 0] = 0.9
    assert load_balancing_loss(torch.tensor([[0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3]]).expand(8, 4), skew, 1).item() == pytest.approx(
        4 * 0.9
    )
    model = MoEMLP(6, hidden=5, num_experts=4, expert_hidden=3, out_features=2, top_k=2)
    h = torch.randn(10, 5)
    p, w = model.route(h)
    assert ((w > 0).sum(1) == 2).all() and torch.allclose(w[w > 0], p[w > 0])
    assert model.expert_load(torch.randn(10, 6)).sum().item() == pytest.approx(2.0)


# -- the quantiser ----------------------------------------------------------------------------------
def test_quantizer_levels_by_hand():
    v = torch.tensor([0.0, 0.1, 0.4, 0.9, 1.0])
    assert torch.allclose(quantize(v, bits=2, bucket_size=8), torch.tensor([0.0, 0.0, 1 / 3, 1.0, 1.0]))
    assert torch.allclose(quantize(v, bits=1, bucket_size=8), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]))


def test_quantizer_scales_each_bucket_by_its_own_min_and_max():
    v = torch.tensor([0.0, 0.4, 1.0, 10.0, 13.0, 20.0, -2.0])
    # buckets [0, .4, 1] / [10, 13, 20] / [-2] with 4 levels each
    expected = torch.tensor([0.0, 1 / 3, 1.0, 10.0, 10 + 10 / 3, 20.0, -2.0])
    assert torch.allclose(quantize(v, bits=2, bucket_size=3), expected)


def test_quantizer_is_idempotent_keeps_bucket_ends_and_uses_at_most_2_to_the_b_levels():
    w = torch.randn(37, 11, generator=torch.Generator().manual_seed(16))
    for bits in (1, 2, 4):
        q = quantize(w, bits, bucket_size=64)
        assert torch.allclose(quantize(q, bits, bucket_size=64), q, atol=1e-6)
        flat, qflat = w.reshape(-1), q.reshape(-1)
        for start in range(0, flat.numel(), 64):
            bucket, qbucket = flat[start : start + 64], qflat[start : start + 64]
            assert len(torch.unique(qbucket)) <= 2**bits
            assert torch.isclose(qbucket.min(), bucket.min()) and torch.isclose(qbucket.max(), bucket.max())
            assert ((qbucket - bucket).abs() <= (bucket.max() - bucket.min()) / (2**bits - 1) / 2 + 1e-6).all()


def test_quantizer_straight_through_gradient_is_the_identity():
    w = torch.randn(20, requires_grad=True)
    upstream = torch.randn(20)
    q = quantize_ste(w, bits=2, bucket_size=8)
    assert torch.allclose(q, quantize(w, 2, 8))
    (q * upstream).sum().backward()
    assert torch.allclose(w.grad, upstream)


def test_stochastic_rounding_is_unbiased_and_stays_on_neighbouring_levels():
    torch.manual_seed(17)
    v = torch.tensor([0.0, 0.37, 0.5, 0.81, 1.0])
    draws = torch.stack([quantize(v, bits=2, bucket_size=8, stochastic=True) for _ in range(4000)])
    assert torch.allclose(draws.mean(0), v, atol=0.01)
    lower, upper = torch.floor(v * 3) / 3, torch.ceil(v * 3) / 3
    assert (((draws - lower).abs() < 1e-6) | ((draws - upper).abs() < 1e-6)).all()


def test_quantized_size_by_hand():
    layer = torch.nn.Linear(3, 2)  # 6 weights in 2 buckets of 4, 2 biases in 1 bucket
    assert quantized_size_bits(layer, bits=4, bucket_size=4) == 8 * 4 + 3 * 2 * 32


# -- feature hooks ----------------------------------------------------------------------------------
def test_capture_returns_the_named_layers_and_penultimate():
    model = MLP(4, [5, 3], 2)
    x = torch.randn(6, 4)
    out, (h1, pen) = capture(model, x, ["net.1", PENULTIMATE])
    assert torch.allclose(h1, torch.relu(model.net[0](x)))
    assert torch.allclose(pen, torch.relu(model.net[2](h1))) and torch.allclose(out, model(x))
    assert not model.net[0]._forward_hooks and not model.net[4]._forward_pre_hooks


def test_capture_names_the_available_layers_on_a_bad_name():
    with pytest.raises(ConfigError, match=r"the student has no layer 'net\.9'; its layers are \['net', 'net\.0'"):
        capture(MLP(4, [5], 2), torch.zeros(1, 4), ["net.9"], "student")
    with pytest.raises(ConfigError, match="no nn.Linear layer"):
        capture(torch.nn.Sequential(torch.nn.ReLU()), torch.zeros(1, 4), [PENULTIMATE])
