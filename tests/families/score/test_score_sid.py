"""score.sid: SiD's generator loss (zero point, gradient by finite-difference Jacobians, α = 0 is DMD), the
separated gradients of the two players, and the refusals before training."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.dmd import dmd_gradient, dmd_loss
from nbdistill.families.score.losses.sid import sid_generator_loss, sid_weight
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.sid import ScoreIdentityDistillation
from nbdistill.models import MLPDenoiser

SCHEDULE = CosineVP()


def _pair():
    real = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), SCHEDULE)
    fake = ExactDenoiser(GaussianMixture.ring(k=3, radius=1.0, std=0.5), SCHEDULE)
    return real, fake


def test_generator_loss_is_zero_when_the_fake_score_equals_the_real_one():
    g = torch.Generator().manual_seed(0)
    y, y_real = torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
    for alpha in (0.0, 1.0, 1.2):
        torch.testing.assert_close(sid_generator_loss(y, y_real, y_real.clone(), alpha), torch.tensor(0.0, dtype=torch.float64))


def test_alpha_zero_with_the_predictions_held_is_the_dmd_gradient():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(16, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y_real, y_fake = torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
    (grad_sid,) = torch.autograd.grad(sid_generator_loss(y, y_real, y_fake, 0.0), y)
    (grad_dmd,) = torch.autograd.grad(dmd_loss(y, dmd_gradient(y, y_real, y_fake)), y)
    torch.testing.assert_close(grad_sid, grad_dmd, rtol=1e-12, atol=1e-14)


def _jacobian_fd(den, x_t, t, h=1e-6):
    """∂D/∂x_t per sample [B, 2, 2] by central differences (no autograd)."""
    cols = []
    for j in range(2):
        e = torch.zeros_like(x_t)
        e[:, j] = h
        cols.append((den(x_t + e, t) - den(x_t - e, t)) / (2 * h))
    return torch.stack(cols, dim=2)  # [B, i, j] = ∂D_i/∂x_j


@pytest.mark.parametrize("alpha", [0.0, 1.2])
def test_generator_gradient_through_both_networks_matches_the_chain_rule(alpha):
    """∂L_G/∂y = [α_t (J_r − J_f)ᵀ b + (α_t J_r − I − α α_t (J_r − J_f))ᵀ a] / (w · numel), a = y_r − y_f,
    b = (y_r − y) − α a, J by finite differences on exact mixture denoisers (float64)."""
    real, fake = _pair()
    g = torch.Generator().manual_seed(2)
    y = torch.randn(8, 2, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.full((8,), 0.4, dtype=torch.float64)
    at, st = SCHEDULE.alpha(t)[:, None], SCHEDULE.sigma(t)[:, None]
    eps = torch.randn(8, 2, generator=g, dtype=torch.float64)
    y_t = at * y + st * eps
    loss = sid_generator_loss(y, real(y_t, t), fake(y_t, t), alpha)
    (auto,) = torch.autograd.grad(loss, y)
    with torch.no_grad():
        x_t = y_t.detach()
        yr, yf = real(x_t, t), fake(x_t, t)
        a, b = yr - yf, (yr - y) - alpha * (yr - yf)
        jr, jf = _jacobian_fd(real, x_t, t), _jacobian_fd(fake, x_t, t)
        eye = torch.eye(2, dtype=torch.float64).expand(8, 2, 2)
        da = at[:, :, None] * (jr - jf)
        db = at[:, :, None] * jr - eye - alpha * da
        hand = (da.transpose(1, 2) @ b[:, :, None] + db.transpose(1, 2) @ a[:, :, None]).squeeze(2)
        hand = hand / (sid_weight(y, yr) * y.numel())
    torch.testing.assert_close(auto, hand, rtol=1e-6, atol=1e-9)


def _module(**hparams):
    teacher = MLPDenoiser(2, hidden=16, depth=2)
    return ScoreIdentityDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, **hparams)


def test_each_loss_reaches_only_its_own_player():
    module = _module(fake_init="student")  # a fake score unlike the teacher: a nonzero generator gradient
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    module.loss_terms((x, None))["generator"].backward()
    assert all(p.grad is None for p in module.fake_score.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.student.parameters())
    module.zero_grad(set_to_none=True)
    module.loss_terms((x, None))["fake_score"].backward()
    assert all(p.grad is None for p in module.student.parameters())
    assert all(p.grad is not None for p in module.fake_score.parameters())


def test_the_fake_score_learns_faster_in_its_own_group():
    module = _module(lr=1e-4, fake_lr_ratio=10.0)
    rates = sorted(group["lr"] for group in module.configure_optimizers().param_groups)
    assert rates == pytest.approx([1e-4, 1e-3])


def test_refusals_before_training():
    with pytest.raises(ConfigError, match="t_low"):
        _module(t_low=0.5, t_high=0.3)
    exact = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3))
    with pytest.raises(ConfigError, match="no weights"):
        ScoreIdentityDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=exact, fake_init="teacher")
    with pytest.raises(ConfigError, match="teacher"):
        ScoreIdentityDistillation(MLPDenoiser(2, hidden=16, depth=2))
