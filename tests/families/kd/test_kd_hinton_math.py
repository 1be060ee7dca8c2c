"""Hinton KD against its math (shared/reference/kd.md §1)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy

from nbdistill.core.divergence import kl_divergence
from nbdistill.families.kd.losses import hinton_kd


def _logits(b=6, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64), torch.randn(b, c, generator=g, dtype=torch.float64)


def test_zero_when_student_equals_teacher_and_alpha_zero():
    z, _ = _logits()
    y = torch.zeros(len(z), dtype=torch.long)
    out = hinton_kd(z.clone(), z.clone(), y, temperature=4.0, alpha=0.0)
    assert out["loss"].abs().item() < 1e-12


@pytest.mark.parametrize("temperature", [1.0, 3.0, 7.5])
def test_kl_equals_scipy_entropy_per_sample(temperature):
    zs, zt = _logits(8, 7, seed=1)
    ours = kl_divergence(zt, zs, temperature).numpy()
    pt = torch.softmax(zt / temperature, -1).numpy()
    ps = torch.softmax(zs / temperature, -1).numpy()
    ref = np.array([entropy(pt[i], ps[i]) for i in range(len(pt))])
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_batchmean_is_sum_over_batch_and_matches_reference_reductions():
    zs, zt = _logits(9, 4, seed=2)
    y = torch.arange(9) % 4
    T = 4.0
    ours = hinton_kd(zs, zt, y, T, alpha=0.0)["kd"]
    log_ps = F.log_softmax(zs / T, -1)
    pt = F.softmax(zt / T, -1)
    torch_batchmean = F.kl_div(log_ps, pt, reduction="batchmean") * T**2  # torchdistill KDLoss
    per_sample_sum_mean = (F.kl_div(log_ps, pt, reduction="none").sum(1)).mean() * T**2  # mdistiller
    sum_over_b = F.kl_div(log_ps, pt, reduction="sum") * T**2 / zs.shape[0]  # RepDistiller
    for ref in (torch_batchmean, per_sample_sum_mean, sum_over_b):
        assert torch.allclose(ours, ref, rtol=1e-12)


def test_alpha_mixes_ce_and_soft_term():
    zs, zt = _logits(5, 3, seed=3)
    y = torch.tensor([0, 1, 2, 0, 1])
    out = hinton_kd(zs, zt, y, temperature=2.0, alpha=0.3)
    expected = 0.3 * F.cross_entropy(zs, y) + 0.7 * 4.0 * kl_divergence(zt, zs, 2.0).mean()
    assert torch.allclose(out["loss"], expected)
    assert torch.allclose(hinton_kd(zs, zt, y, 2.0, alpha=1.0)["loss"], F.cross_entropy(zs, y))


def test_high_temperature_limit_is_logit_matching():
    # T^2 KL -> 1/(2C) * sum_c (d_c - mean d)^2 with d = z_s - z_t (second-order expansion).
    zs, zt = _logits(4, 6, seed=4)
    d = zs - zt
    limit = ((d - d.mean(1, keepdim=True)) ** 2).sum(1) / (2 * zs.shape[1])
    for T, tol in ((100.0, 5e-2), (1000.0, 5e-3), (10000.0, 5e-4)):
        approx = T**2 * kl_divergence(zt, zs, T)
        assert torch.allclose(approx, limit, rtol=tol), (T, approx, limit)


def test_zero_mean_logits_reduce_to_squared_difference():
    zs, zt = _logits(3, 5, seed=5)
    zs, zt = zs - zs.mean(1, keepdim=True), zt - zt.mean(1, keepdim=True)
    T = 5000.0
    approx = T**2 * kl_divergence(zt, zs, T)
    assert torch.allclose(approx, ((zs - zt) ** 2).sum(1) / (2 * 5), rtol=1e-3)


def test_shift_invariance_per_row():
    zs, zt = _logits(4, 5, seed=6)
    y = torch.tensor([0, 1, 2, 3])
    shift = torch.tensor([[3.0], [-2.0], [0.5], [10.0]], dtype=torch.float64)
    a = hinton_kd(zs, zt, y, 4.0, 0.5)["loss"]
    b = hinton_kd(zs + shift, zt - 2 * shift, y, 4.0, 0.5)["loss"]
    assert torch.allclose(a, b, rtol=1e-10)


def test_gradient_of_soft_term_scales_so_t2_keeps_it_order_one():
    # Paper §2: d(KL)/dz_s = (p_s - p_t)/T, so T^2 KL has gradient T (p_s - p_t) ~ (z_s - z_t)/C at large T.
    zs, zt = _logits(2, 4, seed=7)
    zs.requires_grad_(True)
    T = 50.0
    (T**2 * kl_divergence(zt, zs, T).sum()).backward()
    expected = T * (torch.softmax(zs.detach() / T, -1) - torch.softmax(zt / T, -1))
    assert torch.allclose(zs.grad, expected, rtol=1e-8)
