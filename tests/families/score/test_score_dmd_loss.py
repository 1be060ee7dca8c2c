"""The distribution-matching gradient shared by the DMD-style methods (DMD Alg. 1)."""

from __future__ import annotations

import torch

from nbdistill.families.score.exact import GaussianMixture
from nbdistill.families.score.losses.dmd import dmd_gradient, dmd_loss
from nbdistill.families.score.schedule import CosineVP


def test_the_surrogate_loss_back_propagates_the_gradient():
    """∂L_DM/∂x = grad / numel (autograd, float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(8, 2, generator=g, dtype=torch.float64)
    dmd_loss(x, grad).backward()
    torch.testing.assert_close(x.grad, grad / x.numel(), rtol=1e-12, atol=1e-15)


def test_the_gradient_is_the_score_difference_normalised_by_hand():
    """grad = (μ_fake − μ_real)/mean|x − μ_real|, and (s_fake − s_real) = α(μ_fake − μ_real)/σ² points the same way."""
    schedule = CosineVP()
    real, fake = GaussianMixture.ring(k=4, radius=2.0, std=0.3), GaussianMixture.ring(k=4, radius=1.0, std=0.5)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 2, generator=g, dtype=torch.float64)
    t = torch.tensor(0.4, dtype=torch.float64)
    a, s = schedule.alpha(t), schedule.sigma(t)
    x_t = a * x + s * torch.randn(16, 2, generator=g, dtype=torch.float64)
    mu_real, mu_fake = real.denoise(x_t, a, s), fake.denoise(x_t, a, s)
    grad = dmd_gradient(x, mu_real, mu_fake)
    norm = torch.stack([(x[i] - mu_real[i]).abs().mean() for i in range(16)])
    torch.testing.assert_close(grad, (mu_fake - mu_real) / norm[:, None], rtol=1e-12, atol=0)
    score_diff = fake.score(x_t, a, s) - real.score(x_t, a, s)
    cos = torch.nn.functional.cosine_similarity(score_diff, grad, dim=1)
    torch.testing.assert_close(cos, torch.ones(16, dtype=torch.float64), rtol=0, atol=1e-9)


def test_a_fake_score_equal_to_the_real_one_gives_no_gradient():
    x = torch.randn(5, 2, dtype=torch.float64)
    mu = torch.randn(5, 2, dtype=torch.float64)
    assert dmd_gradient(x, mu, mu.clone()).abs().max() == 0
