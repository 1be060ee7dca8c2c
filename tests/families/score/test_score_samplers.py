"""The probability-flow ODE samplers against closed-form ODE solutions with the exact teacher (float64)."""

import pytest
import torch
from torch import nn

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.samplers import check_times, ddim, ddim_step, euler, evaluations, heun, sample
from nbdistill.families.score.schedule import CosineVP, LinearVP

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: one thread is fastest
F64 = torch.float64
SCHEDULES = [CosineVP(), LinearVP()]
M = torch.tensor([0.5, -1.0], dtype=F64)
STD = torch.tensor([0.3, 1.5], dtype=F64)  # a diagonal Gaussian: its ODE flow is a per-axis scaling


def _x(n=100, seed=0):
    return torch.randn(n, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _gaussian_flow(schedule, x, t, s):
    """The exact probability-flow map of N(M, diag(STD^2)) from t to s: x_s - alpha_s M = sqrt(C_s / C_t) (x_t - alpha_t M),
    C = alpha^2 STD^2 + sigma^2 (the flow carries N(alpha_t M, C_t) onto N(alpha_s M, C_s) by a monotone linear map)."""
    c_t = schedule.alpha(t) ** 2 * STD**2 + schedule.sigma(t) ** 2
    c_s = schedule.alpha(s) ** 2 * STD**2 + schedule.sigma(s) ** 2
    return schedule.alpha(s) * M + (c_s / c_t).sqrt() * (x - schedule.alpha(t) * M)


class _Constant(nn.Module):
    """The denoiser of a point mass at ``m``: E[x | x_t] = m for every x_t."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x, t):
        return self.m.expand_as(x)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_one_ddim_step_is_exact_for_a_point_mass(schedule):
    # For data = delta(m) the ODE solution is x_s = alpha_s m + sigma_s (x_t - alpha_t m) / sigma_t (eps is constant).
    x, t, s = _x(), torch.tensor(0.9, dtype=F64), torch.tensor(0.2, dtype=F64)
    expected = schedule.alpha(s) * M + schedule.sigma(s) * (x - schedule.alpha(t) * M) / schedule.sigma(t)
    assert torch.allclose(ddim(_Constant(M), schedule, x, torch.stack([t, s])), expected, atol=1e-14)
    narrow = ExactDenoiser(GaussianMixture(M[None], stds=1e-5), schedule)  # nearly a point mass: nearly exact
    assert torch.allclose(ddim(narrow, schedule, x, torch.stack([t, s])), expected, atol=1e-8)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_one_ddim_step_on_a_gaussian_is_the_first_order_step_by_hand(schedule):
    # x0_hat = M + alpha_t STD^2 / C_t (x_t - alpha_t M), so one DDIM step gives
    # x_s - alpha_s M = (alpha_s alpha_t STD^2 + sigma_s sigma_t) / C_t (x_t - alpha_t M).
    teacher = ExactDenoiser(GaussianMixture(M[None], stds=STD[None]), schedule)
    x, t, s = _x(), torch.tensor(0.7, dtype=F64), torch.tensor(0.4, dtype=F64)
    a_t, s_t, a_s, s_s = schedule.alpha(t), schedule.sigma(t), schedule.alpha(s), schedule.sigma(s)
    expected = a_s * M + (a_s * a_t * STD**2 + s_s * s_t) / (a_t**2 * STD**2 + s_t**2) * (x - a_t * M)
    assert torch.allclose(ddim(teacher, schedule, x, torch.stack([t, s])), expected, atol=1e-13)
    per_sample_times = ddim_step(teacher, schedule, x, t.expand(100), s.expand(100))
    assert torch.allclose(per_sample_times, expected, atol=1e-13)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_samplers_converge_to_the_closed_form_flow_and_heun_beats_euler(schedule):
    teacher = ExactDenoiser(GaussianMixture(M[None], stds=STD[None]), schedule)
    x = _x()
    errors = {}
    for n in (10, 20):
        times = schedule.timesteps(n, dtype=F64)
        exact = _gaussian_flow(schedule, x, times[0], times[-1])
        for method in (ddim, euler, heun):
            errors[method.__name__, n] = (method(teacher, schedule, x, times) - exact).abs().max().item()
    for n in (10, 20):  # measured: cosine 10 steps ddim 0.53, euler 0.14, heun 0.024; linear 0.62, 0.12, 0.081
        assert errors["heun", n] < 0.7 * errors["euler", n]
    for method in ("ddim", "euler"):  # first order: doubling the steps about halves the error
        assert 1.6 < errors[method, 10] / errors[method, 20] < 2.6
    assert errors["heun", 10] / errors["heun", 20] > 3.0  # second order: about 4
    times = schedule.timesteps(200, dtype=F64)
    fine = heun(teacher, schedule, x, times)
    assert torch.allclose(fine, _gaussian_flow(schedule, x, times[0], times[-1]), atol=1e-3)


def test_a_50_step_ode_from_the_prior_reproduces_the_mixture_moments():
    # 20 000 samples: the standard error is about 0.01 for the mean and 0.02 for a covariance entry (variance about 2).
    ring = GaussianMixture.ring(k=8, radius=2.0, std=0.2)
    teacher = ExactDenoiser(ring, CosineVP())
    x = sample(teacher, CosineVP(), 20_000, 50, "heun", torch.Generator().manual_seed(0), dtype=F64)
    assert x.shape == (20_000, 2) and x.dtype == F64
    assert torch.allclose(x.mean(0), ring.mean(), atol=0.05)  # measured: |error| <= 0.019
    assert torch.allclose(torch.cov(x.T), ring.covariance(), atol=0.1)  # measured: <= 0.023
    counts = torch.bincount(ring.component_of(x), minlength=8)
    assert (counts > 0.1 * 20_000).all()  # every mode about 1/8 of the samples


def test_trajectories_seeds_and_conditioning():
    schedule = CosineVP()
    ring = GaussianMixture.ring(classes=2)
    teacher = ExactDenoiser(ring, schedule)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    path = sample(teacher, schedule, 50, 4, "euler", gen(), trajectory=True)
    assert path.shape == (5, 50, 2) and path.dtype == torch.float32
    assert torch.equal(path[-1], sample(teacher, schedule, 50, 4, "euler", gen()))
    y = torch.zeros(200, dtype=torch.long)
    x = sample(teacher, schedule, 200, 20, "ddim", gen(), dtype=F64, y=y)
    assert (ring.component_of(x) % 2 == 0).all(), "class 0's samples must land on its (even) components"
    assert evaluations("heun", 10) == 20 and evaluations("ddim", 10) == 10


def test_heun_takes_an_euler_step_into_sigma_zero():
    schedule = CosineVP()
    teacher = ExactDenoiser(GaussianMixture(M[None], stds=STD[None]), schedule)
    times = torch.tensor([0.5, 0.0], dtype=F64)
    assert torch.allclose(heun(teacher, schedule, _x(), times), euler(teacher, schedule, _x(), times), atol=1e-14)


@pytest.mark.parametrize(
    "times, message",
    [
        ([0.5], "at least 2 times"),
        ([0.2, 0.5], "strictly decrease"),
        ([0.5, 0.5, 0.1], "strictly decrease"),
        ([1.5, 0.1], r"in \[0, 1\]"),
        ([0.9, float("nan")], r"in \[0, 1\]"),
    ],
)
def test_bad_times_are_config_errors(times, message):
    with pytest.raises(ConfigError, match=message):
        check_times(times)
    with pytest.raises(ConfigError, match=message):
        ddim(_Constant(M), CosineVP(), _x(), times)


def test_bad_sample_arguments_are_config_errors():
    teacher = ExactDenoiser(GaussianMixture.ring())
    with pytest.raises(ConfigError, match="unknown sampler 'rk4'"):
        sample(teacher, CosineVP(), 10, 4, "rk4")
    with pytest.raises(ConfigError, match="at least 1 step"):
        sample(teacher, CosineVP(), 10, 0)
    with pytest.raises(ConfigError, match="n_samples"):
        sample(teacher, CosineVP(), 0, 4)


def test_sampling_with_a_schedule_that_is_not_increasing_is_refused():
    from nbdistill.core.errors import ConfigError
    from nbdistill.families.score.samplers import sample
    from nbdistill.families.score.schedule import CosineVP

    class Backwards(CosineVP):
        def alpha(self, t):
            return super().sigma(t)

        def sigma(self, t):
            return super().alpha(t)

    with pytest.raises(ConfigError, match="not increasing"):
        sample(lambda x, t: x, Backwards(), 4, 2)
