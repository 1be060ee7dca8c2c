"""score.consistency: the boundary condition, the loss's fixed point (the teacher's ODE endpoint map) with an
exact teacher in float64, the Heun step, the EMA target, the multistep sampler, a short training, the refusals."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score import samplers
from nbdistill.families.score.consistency import ConsistencyDistillation, consistency_sample
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.consistency import (
    boundary_scalings,
    consistency_loss,
    consistency_map,
    ema_update,
    pseudo_huber,
    renoise,
    teacher_ode_step,
)
from nbdistill.families.score.schedule import CosineVP, LinearVP
from nbdistill.models import MLPDenoiser

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _denoiser_for(flow, x, t, b, schedule):
    """The x0-prediction ``D`` whose consistency map ``c_skip x + c_out D`` is ``flow`` (``D = x`` where ``t = b``,
    where ``c_out = 0`` and any ``D`` gives ``x``)."""
    c_skip, c_out = boundary_scalings(schedule.alpha(t), schedule.sigma(t), schedule.alpha(b), schedule.sigma(b))
    safe = torch.where(c_out == 0, torch.ones_like(c_out), c_out)
    d = (flow - c_skip[:, None] * x) / safe[:, None]
    return torch.where((c_out == 0)[:, None], x, d)


class GridEndpoint(torch.nn.Module):
    """A student whose consistency function is the teacher's ``N``-step ODE solver along the grid from ``t`` (a
    grid time) to ``ε = t_min``: the fixed point of consistency distillation with that solver."""

    def __init__(self, teacher, schedule, n: int, solver: str = "ddim"):
        super().__init__()
        self.teacher, self.schedule, self.n, self.solver = teacher, schedule, n, solver

    def forward(self, x, t):
        grid = self.schedule.timesteps(self.n, dtype=x.dtype)
        index = torch.round((grid[0] - t) / (grid[0] - grid[-1]) * self.n).long()
        flow = x.clone()
        for i in index.unique().tolist():
            rows = index == i
            if i < self.n:
                flow[rows] = samplers.SAMPLERS[self.solver](self.teacher, self.schedule, x[rows], grid[i:])
        return _denoiser_for(flow, x, t, grid[-1].expand(len(t)), self.schedule)


class GaussianFlow(torch.nn.Module):
    """A student whose consistency function is the exact probability-flow map ``t -> ε`` of the 1-D Gaussian
    ``N(m, s²)``: ``Φ(x) = α_ε m + std_ε (x − α_t m)/std_t`` with ``std_t = sqrt(α_t² s² + σ_t²)``."""

    def __init__(self, m: float, s: float, schedule):
        super().__init__()
        self.m, self.s, self.schedule = m, s, schedule

    def flow(self, x, t, b):
        sch = self.schedule
        std_t = torch.sqrt(sch.alpha(t) ** 2 * self.s**2 + sch.sigma(t) ** 2)[:, None]
        std_b = torch.sqrt(sch.alpha(b) ** 2 * self.s**2 + sch.sigma(b) ** 2)[:, None]
        return sch.alpha(b)[:, None] * self.m + std_b * (x - sch.alpha(t)[:, None] * self.m) / std_t

    def forward(self, x, t):
        eps = torch.full_like(t, self.schedule.t_min)
        return _denoiser_for(self.flow(x, t, eps), x, t, eps, self.schedule)


def _ring_teacher(schedule):
    return ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), schedule)


def _data(n=64, seed=0):
    return GaussianMixture.ring(k=4, radius=2.0, std=0.3).sample(n, generator=torch.Generator().manual_seed(seed)).to(F64)


@pytest.mark.parametrize("schedule", [CosineVP(), LinearVP()])
def test_boundary_condition_holds_exactly_for_any_weights(schedule):
    """c_skip(ε) = 1, c_out(ε) = 0: f_θ(x, ε) = x whatever the denoiser says (float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 2, generator=g, dtype=F64)
    eps = torch.full((32,), schedule.t_min, dtype=F64)
    module = ConsistencyDistillation(
        MLPDenoiser(2, hidden=16, depth=2).to(F64), teacher=_ring_teacher(schedule), schedule=schedule.name
    )
    torch.testing.assert_close(module.consistency(module.student, x, eps, eps), x, rtol=0, atol=1e-15)
    x0 = torch.randn(32, 2, generator=g, dtype=F64)
    torch.testing.assert_close(
        consistency_map(x, x0, schedule.alpha(eps), schedule.sigma(eps), schedule.alpha(eps), schedule.sigma(eps)), x
    )
    # away from ε it is the DDIM step to ε: nearly the x0-prediction (σ_ε = 1.6e-3 cosine, 1.05e-2 linear)
    t = torch.full((32,), 0.5, dtype=F64)
    c_skip, c_out = boundary_scalings(schedule.alpha(t), schedule.sigma(t), schedule.alpha(eps), schedule.sigma(eps))
    assert (c_skip < 0.02).all() and ((c_out - 1).abs() < 0.02).all()


def test_mlp_denoiser_v_parametrisation_meets_the_boundary_approximately():
    """MLPDenoiser's x0-prediction cos(πt/2) x − sin(πt/2) F equals x at t = 0 and is within sin(π ε/2)|F| of it at ε."""
    torch.manual_seed(0)
    net = MLPDenoiser(2, hidden=16, depth=2).to(F64)
    x = torch.randn(32, 2, dtype=F64)
    torch.testing.assert_close(net(x, torch.zeros(32, dtype=F64)), x, rtol=0, atol=1e-15)
    eps = CosineVP().t_min
    gap = (net(x, torch.full((32,), eps, dtype=F64)) - x).abs().max()
    assert 0 < gap < 2e-3 * (1 + x.abs().max())


@pytest.mark.parametrize("solver", ["ddim", "heun"])
def test_loss_is_zero_at_the_teacher_endpoint_map(solver):
    """With student = target = the teacher's N-step solver to ε, f(x_{t_n}, t_n) = f⁻(Φ(x_{t_n}), t_{n+1}) exactly."""
    schedule, n = CosineVP(), 6
    teacher = _ring_teacher(schedule)
    endpoint = GridEndpoint(teacher, schedule, n, solver)
    module = ConsistencyDistillation(endpoint, teacher=teacher, teacher_steps=n, solver=solver)
    torch.manual_seed(1)
    terms = module.loss_terms((_data(), None))
    assert terms["loss"] < 1e-24
    # the teacher's own denoiser is not a consistency function: the loss sees it
    module = ConsistencyDistillation(ExactDenoiser(teacher.mixture, schedule), teacher=teacher, teacher_steps=n, solver=solver)
    assert module.loss_terms((_data(), None))["loss"] > 1e-4


def test_heun_step_matches_the_samplers_heun_and_converges_to_the_exact_flow():
    """One per-sample Heun step equals samplers.heun on [t, s]; on a 1-D Gaussian the CD loss of the exact ODE
    map with Heun steps vanishes as O(h^6) (squared third-order local error)."""
    schedule = CosineVP()
    teacher = ExactDenoiser(GaussianMixture([[1.0]], stds=0.5), schedule)
    x = torch.randn(16, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    t, s = torch.tensor(0.7, dtype=F64), torch.tensor(0.55, dtype=F64)
    one = teacher_ode_step(teacher, schedule, x, t.expand(16), s.expand(16), "heun")
    torch.testing.assert_close(one, samplers.heun(teacher, schedule, x, torch.stack([t, s])), rtol=0, atol=1e-14)
    flow = GaussianFlow(1.0, 0.5, schedule)
    data = GaussianMixture([[1.0]], stds=0.5).sample(4000, generator=torch.Generator().manual_seed(1)).to(F64)
    losses = {}
    for n in (8, 32):
        torch.manual_seed(2)
        losses[n] = float(
            ConsistencyDistillation(flow, teacher=teacher, teacher_steps=n, solver="heun").loss_terms((data, None))["loss"]
        )
    assert losses[32] < losses[8] / 500 and losses[32] < 1e-9, losses


def test_ema_update_is_the_convex_combination():
    """θ⁻ ← μ θ⁻ + (1 − μ) θ: 1 and 3 with μ = 0.75 give 1.5; the module updates its target after each batch."""
    target, online = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    torch.nn.init.constant_(target.weight, 1.0)
    torch.nn.init.constant_(online.weight, 3.0)
    ema_update(target, online, 0.75)
    torch.testing.assert_close(target.weight, torch.full((1, 2), 1.5))
    module = ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=_ring_teacher(CosineVP()), ema_decay=0.5)
    before = [p.clone() for p in module.target.parameters()]
    with torch.no_grad():
        for p in module.student.parameters():
            p.add_(1.0)
    module.on_train_batch_end(None, None, 0)
    for old, new in zip(before, module.target.parameters()):
        torch.testing.assert_close(new, old + 0.5, rtol=0, atol=1e-6)


def test_target_network_is_checkpointed_but_not_optimised():
    module = ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=_ring_teacher(CosineVP()))
    optimised = {id(p) for group in module.configure_optimizers().param_groups for p in group["params"]}
    assert optimised == {id(p) for p in module.student.parameters()}
    assert not any(p.requires_grad for p in module.target.parameters())
    state = module.state_dict()
    assert any(k.startswith("target.") for k in state)
    with torch.no_grad():
        next(module.target.parameters()).add_(1.0)
    fresh = ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=_ring_teacher(CosineVP()))
    fresh.load_state_dict(module.state_dict())
    torch.testing.assert_close(next(fresh.target.parameters()), next(module.target.parameters()))


def test_renoise_is_the_vp_transition_kernel():
    """x_b = α_b x + σ_b e carried to t: the data keeps the coefficient α_t and the two noises add up to σ_t² (float64)."""
    sch = CosineVP()
    b, t = torch.tensor(0.2, dtype=F64), torch.tensor(0.6, dtype=F64)
    one, zero = torch.ones(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64)
    coef = lambda x_b, z: renoise(x_b, sch.alpha(b), sch.sigma(b), sch.alpha(t), sch.sigma(t), z)  # noqa: E731
    data = coef(sch.alpha(b) * one, zero)  # x = 1, no noise
    noise_b, noise_new = coef(sch.sigma(b) * one, zero), coef(zero, one)
    torch.testing.assert_close(data, sch.alpha(t) * one, rtol=0, atol=1e-15)
    torch.testing.assert_close(noise_b**2 + noise_new**2, sch.sigma(t) ** 2 * one, rtol=0, atol=1e-15)


def test_multistep_sampler_is_alg1():
    """steps = 2: x = f(z, t_max), re-noise to the middle time with the generator's next draw, f again."""
    sch = CosineVP()
    module = ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=_ring_teacher(sch), teacher_steps=8, steps=2)
    out = module.draw_samples(5, torch.Generator().manual_seed(3), (2,), torch.float32)
    g = torch.Generator().manual_seed(3)
    z, z2 = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    times = sch.timesteps(2, dtype=torch.float32)
    eps, t_max, mid = (times[i].expand(5) for i in (2, 0, 1))
    x = module.consistency(module.student, z, t_max, eps)
    x = renoise(x, sch.alpha(eps), sch.sigma(eps), sch.alpha(mid), sch.sigma(mid), z2)
    torch.testing.assert_close(out, module.consistency(module.student, x, mid, eps))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_multistep_samples_of_the_exact_consistency_function_have_the_data_law(steps):
    """With the exact ODE map of a 1-D Gaussian N(1, 0.5²), 1, 2 and 4-step consistency samples all follow the law of
    x_ε (mean α_ε, std sqrt(α_ε² 0.25 + σ_ε²)); the one-step sample is the ODE endpoint of its noise."""
    sch = CosineVP()
    module = ConsistencyDistillation(
        MLPDenoiser(1, hidden=8, depth=1).to(F64), teacher=_ring_teacher(sch), teacher_steps=8, steps=steps
    )
    module.student = GaussianFlow(1.0, 0.5, sch)
    samples = module.draw_samples(20000, torch.Generator().manual_seed(4), (1,), F64)
    eps = torch.tensor(sch.t_min, dtype=F64)
    assert abs(samples.mean() - sch.alpha(eps)) < 0.015
    assert abs(samples.std() - torch.sqrt(sch.alpha(eps) ** 2 * 0.25 + sch.sigma(eps) ** 2)) < 0.015
    if steps == 1:
        z = torch.randn(20000, 1, generator=torch.Generator().manual_seed(4), dtype=F64)
        endpoint = samplers.heun(
            ExactDenoiser(GaussianMixture([[1.0]], stds=0.5), sch), sch, z[:50], sch.timesteps(200, dtype=F64)
        )
        torch.testing.assert_close(samples[:50], endpoint, rtol=0, atol=1e-4)  # Heun's O(h²) error at 200 steps: 4e-5


def test_training_makes_the_one_step_sample_the_ode_endpoint():
    """A few hundred CD steps on a 1-D Gaussian with the exact teacher bring f_θ(z, t_max) close to the exact ODE
    endpoint of z (the student starts far from it)."""
    torch.manual_seed(0)
    sch = CosineVP()
    mixture = GaussianMixture([[1.0]], stds=0.5)
    module = ConsistencyDistillation(
        MLPDenoiser(1, hidden=32, depth=2), teacher=ExactDenoiser(mixture, sch), teacher_steps=12, ema_decay=0.9
    )
    optimiser = torch.optim.Adam(module.student.parameters(), lr=3e-3)
    z = torch.linspace(-2.5, 2.5, 51)[:, None]
    t_max, eps = torch.full((51,), sch.t_max), torch.full((51,), sch.t_min)
    exact = GaussianFlow(1.0, 0.5, sch).flow(z, t_max, eps)

    def error():
        with torch.no_grad():
            return float((module.consistency(module.student, z, t_max, eps) - exact).abs().mean())

    before = error()
    data = mixture.sample(4096, generator=torch.Generator().manual_seed(1)).float()
    for step in range(300):
        loss = module.loss_terms((data[torch.randint(4096, (64,))], None))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        module.on_train_batch_end(None, None, step)
    after = error()
    assert after < 0.1 and after < before / 5, (before, after)


def test_pseudo_huber_distance():
    """sqrt(‖a − b‖² + c²) − c with c = 0.00054 sqrt(d): ≈ ‖a − b‖ far from 0, ≈ ‖a − b‖²/(2c) near it."""
    a, b = torch.tensor([[3.0, 4.0]], dtype=F64), torch.zeros(1, 2, dtype=F64)
    c = 0.00054 * 2**0.5
    torch.testing.assert_close(pseudo_huber(a, b), torch.tensor([(25 + c * c) ** 0.5 - c], dtype=F64))
    terms = consistency_loss(a, b, "pseudo_huber")
    torch.testing.assert_close(terms["consistency_mse"], torch.tensor(12.5, dtype=F64))


def test_refusals():
    teacher = _ring_teacher(CosineVP())
    with pytest.raises(ConfigError, match="steps"):
        ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, teacher_steps=4, steps=5)
    with pytest.raises(ConfigError):
        ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, steps=0)
    with pytest.raises(ConfigError, match="init='teacher'"):
        ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, init="teacher")
    with pytest.raises(ConfigError, match="teacher"):
        ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=None).loss_terms((torch.zeros(4, 2), None))


def test_init_teacher_copies_the_weights():
    teacher = MLPDenoiser(2, hidden=16, depth=2)
    module = ConsistencyDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, init="teacher")
    for p, q in zip(module.student.parameters(), teacher.parameters()):
        torch.testing.assert_close(p, q)
    for p, q in zip(module.target.parameters(), teacher.parameters()):
        torch.testing.assert_close(p, q)


def test_consistency_sample_uses_the_given_times():
    """The sampler with 3 steps makes 3 student evaluations, one at each time before ε."""
    calls = []

    class Counting(torch.nn.Module):
        def forward(self, x, t):
            calls.append(float(t[0]))
            return torch.zeros_like(x)

    module = ConsistencyDistillation(
        MLPDenoiser(2, hidden=16, depth=2), teacher=_ring_teacher(CosineVP()), teacher_steps=8, steps=3
    )
    module.student = Counting()
    times = module.noise.timesteps(3)
    consistency_sample(module.student, module.noise, times, 4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.tensor(calls), times[:-1])
