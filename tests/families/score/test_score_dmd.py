"""score.dmd: the distribution-matching gradient against the exact mixture, the separation of the two players'
gradients, the regression pairs, the refusals, and a short run that moves the generator towards the data."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.dmd import DMD, REFERENCE_SEED
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.metrics import energy_distance
from nbdistill.families.score.schedule import CosineVP
from nbdistill.models import MLPDenoiser
from nbdistill.zoo import ZooTeacher

RING = GaussianMixture.ring(k=4, radius=1.5, std=0.2)


def _module(teacher=None, student=None, **hparams) -> DMD:
    teacher = ExactDenoiser(RING) if teacher is None else teacher
    return DMD(MLPDenoiser(2, hidden=16, depth=2) if student is None else student, teacher=teacher, **hparams)


def _grads(net: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in net.parameters()]


def test_dm_term_pushes_each_point_by_the_normalised_fake_minus_real_denoiser():
    """In float64 with exact real and fake scores: ∂L_DM/∂x = (μ_fake − μ_real)(x_t)/mean|x − μ_real| / numel at the
    x_t the module draws (its t and ε replayed from the seed), and t stays in [t_low, t_high]."""
    m = _module(regression_weight=0.0, t_low=0.2, t_high=0.6).double()
    m.fake_score = ExactDenoiser(GaussianMixture.ring(k=4, radius=0.7, std=0.3))
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    torch.manual_seed(3)
    m.dm_term(x).backward()
    torch.manual_seed(3)
    t = 0.2 + 0.4 * torch.rand(32, dtype=torch.float64)
    noise = CosineVP()
    x_t = noise.alpha(t)[:, None] * x.detach() + noise.sigma(t)[:, None] * torch.randn(32, 2, dtype=torch.float64)
    real, fake = RING.denoise(x_t, noise.alpha(t), noise.sigma(t)), m.fake_score(x_t, t)
    expected = (fake - real) / (x.detach() - real).abs().mean(1, keepdim=True) / x.numel()
    torch.testing.assert_close(x.grad, expected, rtol=1e-10, atol=1e-14)
    assert x.grad.abs().max() > 1e-4  # two different mixtures: a real push


def test_equal_fake_and_real_scores_give_no_generator_gradient():
    """μ_fake = μ_real (the fake score starts as the teacher's copy): L_DM has zero gradient on the generator (float64)."""
    torch.manual_seed(0)
    teacher = MLPDenoiser(2, hidden=16, depth=2).double()
    m = _module(teacher=teacher, regression_weight=0.0, fake_init="teacher").double()
    terms = m.loss_terms((torch.randn(64, 2, dtype=torch.float64), None))
    terms["dm"].backward()
    for g in _grads(m.student):
        torch.testing.assert_close(g, torch.zeros_like(g), rtol=0, atol=1e-14)
    assert all(torch.equal(a, b) for a, b in zip(m.fake_score.state_dict().values(), teacher.state_dict().values()))


def test_each_players_loss_reaches_only_its_own_weights():
    m = _module(regression_weight=0.25, reference_pairs=32, teacher_steps=4, fake_init="student")
    batch = (torch.randn(16, 2), None)
    torch.manual_seed(0)
    m.loss_terms(batch)["dm"].backward()
    assert all(g is None for g in _grads(m.fake_score))
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(m.student))
    m.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    m.loss_terms(batch)["fake"].backward()
    assert all(g is None for g in _grads(m.student))
    assert all(g is not None for g in _grads(m.fake_score)) and sum(g.abs().sum() for g in _grads(m.fake_score)) > 0
    m.zero_grad(set_to_none=True)
    m.loss_terms(batch)["regression"].backward()
    assert all(g is None for g in _grads(m.fake_score))


def test_regression_pairs_are_the_teachers_ddim_endpoints():
    """(z_ref, y_ref): prior noise of the fixed seed and the teacher's teacher_steps-step DDIM from it, recomputed here
    with the DDIM update x ← α_s x̂0 + σ_s (x − α_t x̂0)/σ_t written out (float64); the exact teacher's endpoints
    land on the ring's modes."""
    m = _module(reference_pairs=200, teacher_steps=48)
    z, y = m.reference(torch.zeros(1, 2, dtype=torch.float64))
    torch.testing.assert_close(
        z, torch.randn(200, 2, generator=torch.Generator().manual_seed(REFERENCE_SEED), dtype=torch.float64)
    )
    noise, x = CosineVP(), z.clone()
    times = noise.timesteps(48, dtype=torch.float64)
    for t, s in zip(times[:-1], times[1:]):
        x0 = RING.denoise(x, noise.alpha(t), noise.sigma(t))
        x = noise.alpha(s) * x0 + noise.sigma(s) * (x - noise.alpha(t) * x0) / noise.sigma(t)
    torch.testing.assert_close(y, x, rtol=1e-10, atol=1e-10)
    distance_to_mode = (y[:, None, :] - RING.means[None]).norm(dim=-1).min(1).values
    assert (distance_to_mode < 3 * 0.2 * 2**0.5).float().mean() > 0.95
    assert m.reference(torch.zeros(1, 2, dtype=torch.float64))[0] is z  # made once


@pytest.mark.parametrize(
    ("hparams", "match"),
    [
        ({"t_low": 0.5, "t_high": 0.4}, "t_low < t_high"),
        ({"fake_init": "teacher"}, "no weights"),
        ({"init": "teacher"}, "cannot copy"),
    ],
)
def test_refusals_before_training(hparams, match):
    with pytest.raises(ConfigError, match=match):
        _module(**hparams)


def test_fake_score_starts_from_the_zoo_teachers_network():
    teacher = ZooTeacher("moons-denoiser")
    m = _module(teacher=teacher)
    assert isinstance(m.fake_score, MLPDenoiser) and m.fake_score is not teacher.net
    assert all(p.requires_grad for p in m.fake_score.parameters()) and m.fake_score.training
    for a, b in zip(m.fake_score.parameters(), teacher.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not any(p.requires_grad for p in m.teacher.parameters())  # the teacher itself stays frozen


def test_short_run_moves_the_generator_towards_the_mixture():
    """400 Adam steps on a 4-mode ring (exact teacher) halve the energy distance of G's samples (1.1 -> about 0.1)."""
    torch.manual_seed(0)
    data = RING.sample(1000, torch.Generator().manual_seed(1)).float()
    m = _module(student=MLPDenoiser(2, hidden=32, depth=2), reference_pairs=128, teacher_steps=8)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)

    def distance() -> float:
        return float(energy_distance(m.draw_samples(500, torch.Generator().manual_seed(5), (2,), torch.float32), data))

    before = distance()
    for _ in range(400):
        terms = m.loss_terms((data[torch.randint(len(data), (64,))], None))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    after = distance()
    assert after < 0.5 * before, (before, after)
