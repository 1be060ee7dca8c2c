"""The particle methods score.sds, score.vsd, score.bsd: their gradients against the exact mixture, and the particles' moves."""

from __future__ import annotations

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.fit import build
from nbdistill.core.run import EventLog
from nbdistill.core.views import get_view
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.particles import (
    bsd_alpha,
    bsd_gradient,
    empirical_denoiser,
    sds_gradient,
    sds_weight,
    vsd_gradient,
)
from nbdistill.families.score.particles_views import write_particles
from nbdistill.families.score.schedule import CosineVP, eps_from_denoiser

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64
SCHEDULE = CosineVP()


def _noisy(x: torch.Tensor, t: float, generator: torch.Generator):
    """``x_t`` for ``x`` and its antithetic copies ``ε``, ``−ε`` (the mean of an affine function of ε is then exact)."""
    eps = torch.randn(x.shape, generator=generator, dtype=F64)
    eps = torch.cat([eps, -eps])
    x = torch.cat([x, x])
    alpha, sigma = SCHEDULE.alpha(torch.tensor(t, dtype=F64)), SCHEDULE.sigma(torch.tensor(t, dtype=F64))
    return x, alpha * x + sigma * eps, eps, alpha, sigma


def _eps(mixture: GaussianMixture, x_t, alpha, sigma):
    return eps_from_denoiser(x_t, mixture.denoise(x_t, alpha, sigma), alpha, sigma)


# -- SDS ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_sds_expected_gradient_on_a_1d_gaussian_is_the_hand_formula_pointing_to_the_mean(t):
    """For N(μ, s²): ε̂ − ε = α(x − D(x_t))/σ and E_ε[x − D] = σ²(x − μ)/(α²s² + σ²), so with w = σ²
    E[grad] = α σ³ (x − μ)/(α² s² + σ²): gradient descent moves x to μ. The gradient is affine in ε,
    so antithetic pairs give the expectation exactly (float64)."""
    mu, s = 0.7, 0.5
    gauss = GaussianMixture([[mu]], stds=s)
    g = torch.Generator().manual_seed(0)
    for x0 in (-1.3, 0.2, 2.5):
        x, x_t, eps, alpha, sigma = _noisy(torch.full((500, 1), x0, dtype=F64), t, g)
        grad = sds_gradient(_eps(gauss, x_t, alpha, sigma), eps, sds_weight(alpha, sigma).expand(len(x)))
        hand = alpha * sigma**3 * (x0 - mu) / (alpha**2 * s**2 + sigma**2)
        torch.testing.assert_close(grad.mean(), hand, rtol=1e-9, atol=1e-12)
        assert torch.sign(grad.mean()) == torch.sign(torch.tensor(x0 - mu, dtype=F64))


def test_sds_expected_gradient_on_a_2d_gaussian_is_alpha_sigma3_C_inverse_times_x_minus_mu():
    """Anisotropic 2-D Gaussian N(μ, S): E[grad] = α σ³ C⁻¹ (x − μ), C = α² S + σ² I; it makes an acute
    angle with x − μ (C⁻¹ is positive definite), so descent moves every particle towards the mean."""
    mu = torch.tensor([1.0, -0.5], dtype=F64)
    cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
    gauss = GaussianMixture(mu[None], cov)
    g = torch.Generator().manual_seed(1)
    t = 0.4
    for x0 in ([2.0, 1.0], [-1.0, -2.0]):
        x0 = torch.tensor(x0, dtype=F64)
        x, x_t, eps, alpha, sigma = _noisy(x0.expand(400, 2).clone(), t, g)
        grad = sds_gradient(_eps(gauss, x_t, alpha, sigma), eps, sds_weight(alpha, sigma).expand(len(x))).mean(0)
        c = alpha**2 * cov + sigma**2 * torch.eye(2, dtype=F64)
        hand = alpha * sigma**3 * torch.linalg.solve(c, x0 - mu)
        torch.testing.assert_close(grad, hand, rtol=1e-9, atol=1e-12)
        assert torch.dot(grad, x0 - mu) > 0


def _drive(module, steps: int, batch=None) -> torch.Tensor:
    """``steps`` Adam steps of ``module``'s own optimiser on its loss (no Trainer); the particles after."""
    batch = batch if batch is not None else (torch.zeros(8, 2), torch.zeros(8, dtype=torch.long))
    opt = module.configure_optimizers()
    for _ in range(steps):
        opt.zero_grad()
        module.loss_terms(batch)["loss"].backward()
        opt.step()
    return module.points.detach()


def test_sds_particles_converge_to_the_mode_and_their_variance_collapses():
    """Exact teacher N((1, −0.5), 0.5² I), 128 particles from N(0, I), 200 steps: the particles' mean is
    within 0.1 of the mode and their spread below a third of the data's 0.5 (measured: 0.99, −0.49; ~0.07)."""
    torch.manual_seed(0)
    teacher = ExactDenoiser(GaussianMixture([[1.0, -0.5]], stds=0.5))
    module = build("score.sds", nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), teacher, particles=128)
    points = _drive(module, 200)
    torch.testing.assert_close(points.mean(0), torch.tensor([1.0, -0.5]), rtol=0, atol=0.1)
    assert points.std(0).max() < 0.5 / 3


# -- VSD ----------------------------------------------------------------------------------------------
def test_vsd_expected_gradient_is_zero_for_particles_distributed_as_the_data_with_an_exact_fake_score():
    """Particles drawn from the ring mixture p, ε_φ the exact denoiser of a second, separately built copy of
    p: the VSD gradient vanishes (to float64 rounding) at every t, while SDS's on the same particles
    does not: its mean pull ⟨grad, x⟩ towards the origin is positive."""
    data, fake = GaussianMixture.ring(k=4, radius=2.0, std=0.3), GaussianMixture.ring(k=4, radius=2.0, std=0.3)
    g = torch.Generator().manual_seed(2)
    particles = data.sample(2000, g)
    for t in (0.2, 0.6):
        x, x_t, eps, alpha, sigma = _noisy(particles, t, g)
        w = sds_weight(alpha, sigma).expand(len(x))
        vsd = vsd_gradient(_eps(data, x_t, alpha, sigma), _eps(fake, x_t, alpha, sigma), w)
        torch.testing.assert_close(vsd.mean(0), torch.zeros(2, dtype=F64), rtol=0, atol=1e-12)
        torch.testing.assert_close(vsd, torch.zeros_like(vsd), rtol=0, atol=1e-12)
        sds = sds_gradient(_eps(data, x_t, alpha, sigma), eps, w)
        assert (sds * x).sum(1).mean() > 0.01


def test_vsd_expected_gradient_pushes_narrow_particles_apart_by_the_closed_form():
    """1-D p = N(0, s_p²), particles q = N(0, s_q²) with s_q < s_p and ε_φ exact for q:
    E_ε[grad] = α³ σ x (s_q²/(α² s_q² + σ²) − s_p²/(α² s_p² + σ²)), of the sign opposite to x, so
    descent widens q (SDS's E[grad] has x's sign and narrows it)."""
    s_p, s_q, t = 1.0, 0.4, 0.5
    p, q = GaussianMixture([[0.0]], stds=s_p), GaussianMixture([[0.0]], stds=s_q)
    g = torch.Generator().manual_seed(3)
    for x0 in (-0.8, 0.5):
        x, x_t, eps, alpha, sigma = _noisy(torch.full((300, 1), x0, dtype=F64), t, g)
        w = sds_weight(alpha, sigma).expand(len(x))
        grad = vsd_gradient(_eps(p, x_t, alpha, sigma), _eps(q, x_t, alpha, sigma), w).mean()
        a2 = alpha**2
        hand = alpha**3 * sigma * x0 * (s_q**2 / (a2 * s_q**2 + sigma**2) - s_p**2 / (a2 * s_p**2 + sigma**2))
        torch.testing.assert_close(grad, hand, rtol=1e-9, atol=1e-12)
        assert grad * x0 < 0


def test_vsd_particles_keep_their_spread_where_sds_collapses():
    """Same seed, teacher N((1, −0.5), 0.5² I), 128 particles, 200 steps; VSD's ε_φ is the student
    MLPDenoiser(2, 32, 2) from scratch. Measured spreads (mean std over the axes): SDS ~0.07, VSD ~0.27."""
    teacher = ExactDenoiser(GaussianMixture([[1.0, -0.5]], stds=0.5))
    spreads = {}
    for method in ("score.sds", "score.vsd"):
        torch.manual_seed(0)
        module = build(method, nd.models.MLPDenoiser(dim=2, hidden=32, depth=2), teacher, particles=128)
        spreads[method] = _drive(module, 200).std(0).mean().item()
    assert spreads["score.vsd"] > 2.5 * spreads["score.sds"], spreads


def test_vsd_trains_the_student_as_the_fake_score_and_sds_leaves_it_alone():
    teacher = ExactDenoiser(GaussianMixture([[1.0, -0.5]], stds=0.5))
    for method, moves in (("score.vsd", True), ("score.sds", False)):
        torch.manual_seed(0)
        module = build(method, nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), teacher, particles=16)
        before = [p.detach().clone() for p in module.student.parameters()]
        _drive(module, 3)
        changed = any((a - b.detach()).abs().max() > 0 for a, b in zip(before, module.student.parameters()))
        assert changed is moves, method


# -- BSD ----------------------------------------------------------------------------------------------
def test_bsd_alpha_is_the_min_norm_point_of_the_segment_in_0_1():
    """α ∈ [0, 1]; ‖αc + (1 − α)d‖ ≤ min(‖c‖, ‖d‖) and ≤ the norm at each of a grid of 2001 α
    (a brute-force second way); c = d gives α = 0 and the gradient c, finite."""
    g = torch.Generator().manual_seed(4)
    c, d = torch.randn(500, 2, generator=g, dtype=F64), torch.randn(500, 2, generator=g, dtype=F64)
    c[:50] = d[:50]
    c[50:100] = 3.0 * d[50:100]
    weight = torch.rand(500, generator=g, dtype=F64)
    grad, alpha = bsd_gradient(c, d, weight)
    assert torch.isfinite(grad).all() and ((alpha >= 0) & (alpha <= 1)).all()
    mix = alpha[:, None] * c + (1 - alpha[:, None]) * d
    assert (mix.norm(dim=1) <= torch.minimum(c.norm(dim=1), d.norm(dim=1)) + 1e-12).all()
    grid = torch.linspace(0, 1, 2001, dtype=F64)
    brute = (grid[None, :, None] * c[:, None] + (1 - grid[None, :, None]) * d[:, None]).norm(dim=2).min(1).values
    assert (mix.norm(dim=1) <= brute + 1e-12).all()  # no α of the grid does better
    torch.testing.assert_close(alpha[:50], torch.zeros(50, dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(grad, weight[:, None] * mix, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad[:50], weight[:50, None] * c[:50], rtol=1e-12, atol=0)


def test_bsd_alpha_by_hand():
    """c = (1, 0), d = (0, 1): ⟨d − c, d⟩/‖d − c‖² = 1/2 (the midpoint); c = (2, 0), d = (1, 0): −1 → clipped to 0;
    c = (1, 0), d = (3, 0): 3/2 → clipped to 1."""
    c = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]], dtype=F64)
    d = torch.tensor([[0.0, 1.0], [1.0, 0.0], [3.0, 0.0]], dtype=F64)
    torch.testing.assert_close(bsd_alpha(c, d), torch.tensor([0.5, 0.0, 1.0], dtype=F64), rtol=0, atol=1e-15)


def test_empirical_class_guidance_is_minus_sigma_times_the_noisy_classifier_gradient():
    """ε̂_y − ε̂ of the empirical denoisers equals −σ ∇ log p(y | x_t) by autograd of the labelled points'
    noisy log posterior, and the empirical denoiser equals the exact mixture's with tiny stds (float64)."""
    g = torch.Generator().manual_seed(5)
    points, labels = torch.randn(12, 2, generator=g, dtype=F64), torch.arange(12) % 2
    x_t = torch.randn(7, 2, generator=g, dtype=F64, requires_grad=True)
    alpha, sigma = torch.tensor(0.8, dtype=F64), torch.tensor(0.6, dtype=F64)
    log_k = -(x_t[:, None] - alpha * points[None]).pow(2).sum(-1) / (2 * sigma**2)
    log_post = torch.logsumexp(log_k[:, labels == 0], 1) - torch.logsumexp(log_k, 1)
    (grad_log_post,) = torch.autograd.grad(log_post.sum(), x_t)
    x_t = x_t.detach()
    d_all, d_y = empirical_denoiser(x_t, alpha, sigma, points), empirical_denoiser(x_t, alpha, sigma, points[labels == 0])
    guidance = eps_from_denoiser(x_t, d_y, alpha, sigma) - eps_from_denoiser(x_t, d_all, alpha, sigma)
    torch.testing.assert_close(guidance, -sigma * grad_log_post, rtol=1e-10, atol=1e-12)
    diracs = GaussianMixture(points, stds=1e-7)
    torch.testing.assert_close(d_all, diracs.denoise(x_t, alpha, sigma), rtol=1e-8, atol=1e-10)


def test_bsd_particles_gather_on_the_target_class_of_a_class_conditional_exact_teacher():
    """Two classes at (±2, 0) (std 0.3), 128 particles from N(0, I), 200 steps: BSD with target_class=0
    puts over 90% of them on class 0's component (measured 99%) where SDS splits them (~45%)."""
    ring = GaussianMixture.ring(k=2, radius=2.0, std=0.3, classes=2)
    shares = {}
    for method, extra in (("score.bsd", {"target_class": 0}), ("score.sds", {})):
        torch.manual_seed(0)
        module = build(method, nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), ExactDenoiser(ring), particles=128, **extra)
        points = _drive(module, 200)
        shares[method] = (ring.component_of(points.double()) == 0).float().mean().item()
    assert shares["score.bsd"] > 0.9 and shares["score.sds"] < 0.8, shares


def test_bsd_guides_an_unconditional_teacher_by_the_batch_labels():
    """On the unconditional zoo teacher c comes from the batch's labelled points: a batch whose points are all
    of the other class gives c = 0, whose min-norm point with d is 0 (α = 1 on every particle, no move);
    a batch with both classes does move them."""
    torch.manual_seed(0)
    module = build("score.bsd", nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), nd.zoo.teacher("moons-denoiser"), particles=32)
    x = torch.randn(20, 2)
    terms = module.loss_terms((x, torch.ones(20, dtype=torch.long)))
    torch.testing.assert_close(terms["alpha_at_1"], torch.tensor(1.0), rtol=0, atol=0)
    torch.testing.assert_close(terms["grad_norm"], torch.tensor(0.0), rtol=0, atol=0)
    terms = module.loss_terms((x, torch.arange(20) % 2))
    assert terms["alpha_at_1"] < 1 and terms["grad_norm"] > 0


# -- the module: refusals, samples, view --------------------------------------------------------------
def test_refusals_name_the_problem():
    student, teacher = nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), ExactDenoiser(GaussianMixture.ring(k=2, classes=2))
    with pytest.raises(ConfigError, match="t_lo < t_hi"):
        build("score.sds", student, teacher, t_lo=0.7, t_hi=0.3)
    with pytest.raises(ConfigError, match="target_class"):
        build("score.bsd", student, teacher, target_class=2)
    module = build("score.vsd", nd.models.MLPDenoiser(dim=3, hidden=8, depth=1), teacher)
    with pytest.raises(ConfigError, match="shape"):
        module.check_data(nd.data.TwoMoons(n_samples=40, batch_size=10))
    with pytest.raises(ConfigError, match="teacher"):
        build("score.sds", student, None).check_data(nd.data.TwoMoons(n_samples=40, batch_size=10))


def test_draw_samples_returns_the_particles_subsampled_or_repeated():
    module = build("score.sds", nd.models.MLPDenoiser(dim=2, hidden=8, depth=1), nd.zoo.teacher("moons-denoiser"), particles=10)
    g = torch.Generator().manual_seed(0)
    few, many = module.draw_samples(4, g, (2,), torch.float64), module.draw_samples(25, g, (2,), torch.float32)
    assert few.shape == (4, 2) and few.dtype == torch.float64 and many.shape == (25, 2)
    points = module.points.detach()
    torch.testing.assert_close(few[[0, -1]].float(), points[[0, -1]], rtol=0, atol=0)
    torch.testing.assert_close(many[10:20], points, rtol=0, atol=0)


class _Writer:
    def __init__(self):
        self.events = []

    def points(self, name, x, y, step=None, **extra):
        event = {"kind": "points", "name": name, "x": list(x), "y": list(y), "step": step, **extra}
        self.events.append(event)
        return event


def test_particle_view_draws_from_an_empty_log_and_from_snapshots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    writer = _Writer()
    for step in range(12):
        write_particles(writer, torch.randn(300, 2) / (step + 1), step=step)
    assert len(writer.events[0]["x"]) == 256 and writer.events[0]["n"] == 300
    assert writer.events[-1]["spread"] < writer.events[0]["spread"]
    fig, axes = plt.subplots(1, 3)
    get_view("score_particles")(axes[0], EventLog())
    get_view("score_particles")(axes[1], EventLog(writer.events))
    get_view("bsd_alpha")(axes[2], EventLog())
    assert len(axes[1].collections) == 8  # MAX_SNAPSHOTS of the 12
    plt.close(fig)
