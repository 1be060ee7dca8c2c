"""score.phased_dmd: the subinterval fake-score target on a Gaussian (float64, against the exact posterior
mean), its reduction to the ordinary denoising loss for clean samples, one phase = DMD step for step,
and the phase schedule."""

from __future__ import annotations

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.dmd import dmd_gradient, dmd_loss
from nbdistill.families.score.losses.phased_dmd import subinterval_target, subinterval_weight, transition
from nbdistill.families.score.phased_dmd import T_MAX, T_MIN, PhasedDMD
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.teacher_training import denoising_loss, loss_weight

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is fastest

F64 = torch.float64
SCHEDULE = CosineVP()


def _coef(t: float):
    t = torch.tensor(t, dtype=F64)
    return SCHEDULE.alpha(t), SCHEDULE.sigma(t)


@pytest.mark.parametrize(("s", "t"), [(0.2, 0.5), (0.45, 0.5), (0.3, 0.9), (0.6, 0.95)])
def test_subinterval_target_averages_to_the_exact_denoiser_on_a_gaussian(s, t):
    """x_0 ~ N(m, v I): x_s and x_t are jointly Gaussian, so E[x_s | x_t] = α_s m + α_{t|s} (α_s² v + σ_s²)(x_t − α_t m)
    / (α_t² v + σ_t²); μ̃ is affine in x_s, so E[μ̃ | x_t] is μ̃ at E[x_s | x_t]: it must be Tweedie's E[x_0 | x_t]."""
    m, v = torch.tensor([0.7, -1.2], dtype=F64), 0.3
    (a_s, s_s), (a_t, s_t) = _coef(s), _coef(t)
    x_t = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 1.5
    a_ts, _ = transition(a_s, s_s, a_t, s_t)
    x_s_mean = a_s * m + a_ts * (a_s**2 * v + s_s**2) * (x_t - a_t * m) / (a_t**2 * v + s_t**2)
    expected = GaussianMixture(m[None], stds=v**0.5).denoise(x_t, a_t, s_t)
    torch.testing.assert_close(subinterval_target(x_t, x_s_mean, a_s, s_s, a_t, s_t), expected, rtol=1e-10, atol=1e-10)


def test_subinterval_target_by_monte_carlo_regression():
    """A second way: least squares of μ̃ on x_t over simulated (x_0, x_s, x_t) recovers the posterior-mean line."""
    g = torch.Generator().manual_seed(1)
    n, m, v = 400_000, 0.5, 0.4
    (a_s, s_s), (a_t, s_t) = _coef(0.3), _coef(0.7)
    a_ts, s_ts = transition(a_s, s_s, a_t, s_t)
    x0 = m + v**0.5 * torch.randn(n, 1, generator=g, dtype=F64)
    x_s = a_s * x0 + s_s * torch.randn(n, 1, generator=g, dtype=F64)
    x_t = a_ts * x_s + s_ts * torch.randn(n, 1, generator=g, dtype=F64)
    target = subinterval_target(x_t, x_s, a_s, s_s, a_t, s_t)
    design = torch.cat([torch.ones_like(x_t), x_t], 1)
    coef = torch.linalg.lstsq(design, target).solution.reshape(-1)
    gain = a_t * v / (a_t**2 * v + s_t**2)  # E[x0 | x_t] = m + gain (x_t − α_t m)
    torch.testing.assert_close(coef, torch.stack([m - gain * a_t * m, gain]), rtol=0, atol=2e-2)


def test_clean_samples_give_the_ordinary_denoising_loss():
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    t = torch.linspace(0.05, 0.95, 20, dtype=F64)
    a_t, s_t = SCHEDULE.alpha(t), SCHEDULE.sigma(t)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    x_t = a_t[:, None] * x0 + s_t[:, None] * torch.randn_like(x0)
    torch.testing.assert_close(subinterval_target(x_t, x0, one, zero, a_t, s_t), x0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(subinterval_weight(one, zero, a_t, s_t), loss_weight(SCHEDULE, t, "snr+1"), rtol=1e-12, atol=0)


def _module(phases: int, **hparams) -> PhasedDMD:
    mix = GaussianMixture.ring(k=4, radius=1.5, std=0.2)
    student = nd.models.MLPDenoiser(2, hidden=16, depth=2)
    return PhasedDMD(student=student, teacher=ExactDenoiser(mix, CosineVP()), phases=phases, **hparams).double()


def test_one_phase_is_dmd_step_for_step():
    """phases=1: the generator loss is DMD's (clean samples, τ ~ U[0.02, 0.98]), the fake loss the plain denoising loss."""
    module = _module(1)
    x = torch.randn(16, 2, dtype=F64)
    torch.manual_seed(5)
    terms = module.loss_terms((x, torch.zeros(16, dtype=torch.long)))
    torch.manual_seed(5)  # replay the same draws by hand
    z = torch.randn_like(x)
    mu = module.student(z, torch.full((16,), module.noise.t_max, dtype=F64))
    torch.randn_like(mu)  # x_s = 1·μ + 0·noise
    tau = T_MIN + (T_MAX - T_MIN) * torch.rand(16, dtype=F64)
    x_tau = module.noise.alpha(tau)[:, None] * mu + module.noise.sigma(tau)[:, None] * torch.randn_like(mu)
    generator = dmd_loss(mu, dmd_gradient(mu, module.teacher(x_tau, tau), module.fake(x_tau, tau)))
    tau2 = T_MIN + (T_MAX - T_MIN) * torch.rand(16, dtype=F64)
    fake = denoising_loss(module.fake, mu.detach(), tau2, torch.randn_like(mu), module.noise)
    torch.testing.assert_close(terms["generator"], generator, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(terms["fake_score"], fake, rtol=1e-10, atol=1e-12)


def test_generator_gradient_reaches_only_the_current_expert_and_fake_only_the_fake():
    module = _module(3)
    module.next_phase()
    module.loss_terms((torch.randn(8, 2, dtype=F64), torch.zeros(8, dtype=torch.long)))["loss"].backward()
    grads = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in e.parameters()) for e in module.experts]
    assert grads == [False, True, False]
    assert all(p.grad is not None for p in module.fake.parameters())


def test_phases_advance_copy_the_expert_and_survive_a_checkpoint():
    module = _module(3, phase_steps=2)
    with torch.no_grad():
        next(module.experts[0].parameters()).add_(1.0)
    for _ in range(2):
        module.on_train_batch_end(None, None, 0)
    assert module.phase == 1 and module.sampling_steps == 2
    for a, b in zip(module.experts[0].parameters(), module.experts[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for _ in range(10):
        module.on_train_batch_end(None, None, 0)
    assert module.phase == 2  # the last phase goes on
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    fresh = _module(3, phase_steps=2)
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.phase == 2 and fresh.sampling_steps == 3


def test_samples_run_the_trained_experts_with_fresh_noise_between_steps():
    module = _module(2)
    module.next_phase()
    g = torch.Generator().manual_seed(3)
    samples = module.draw_samples(10, g, (2,), F64)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 2, generator=g, dtype=F64)
    t0, t1 = (float(t) for t in module.boundaries()[:2])
    mu0 = module.experts[0](z, torch.full((10,), t0, dtype=F64))
    a, s = _coef(t1)
    x1 = a * mu0 + s * torch.randn(10, 2, generator=g, dtype=F64)
    torch.testing.assert_close(samples, module.experts[1](x1, torch.full((10,), t1, dtype=F64)), rtol=1e-12, atol=1e-12)


def test_init_teacher_loads_the_teachers_weights_or_refuses():
    teacher = nd.models.MLPDenoiser(2, hidden=16, depth=2)
    module = PhasedDMD(student=nd.models.MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, phases=2, init="teacher")
    for net in (module.experts[0], module.experts[1], module.fake):
        for a, b in zip(net.parameters(), teacher.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="init='teacher' cannot load"):
        PhasedDMD(student=nd.models.MLPDenoiser(2, hidden=8, depth=2), teacher=teacher, init="teacher")
    with pytest.raises(ConfigError, match="init='teacher' cannot load"):
        PhasedDMD(
            student=nd.models.MLPDenoiser(2, hidden=8, depth=2), teacher=ExactDenoiser(GaussianMixture.ring(k=4)), init="teacher"
        )
