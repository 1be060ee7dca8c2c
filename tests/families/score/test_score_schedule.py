"""The VP noise schedules: variance preserving, decreasing log-SNR, the sampler's times, the score formula."""

import math

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.schedule import (
    CosineVP,
    LinearVP,
    VPSchedule,
    make_schedule,
    per_sample,
    score_from_denoiser,
)

SCHEDULES = [CosineVP(), LinearVP()]
T = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_alpha_squared_plus_sigma_squared_is_one(schedule):
    assert torch.allclose(schedule.alpha(T) ** 2 + schedule.sigma(T) ** 2, torch.ones_like(T), atol=1e-14)
    assert schedule.alpha(0.0) == pytest.approx(1.0) and schedule.sigma(0.0) == pytest.approx(0.0)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_log_snr_decreases_and_matches_its_definition(schedule):
    inside = torch.linspace(schedule.t_min, schedule.t_max, 101, dtype=torch.float64)
    lam = schedule.log_snr(inside)
    assert (lam.diff() < 0).all()
    assert torch.allclose(lam, torch.log(schedule.alpha(inside) / schedule.sigma(inside)), atol=1e-12)
    assert torch.isfinite(schedule.log_snr(T)).all(), "log_snr clamps t to [t_min, t_max]: finite at 0 and 1"


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_derivatives_match_finite_differences(schedule):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    for value, slope in [(schedule.alpha, schedule.d_alpha), (schedule.sigma, schedule.d_sigma)]:
        numeric = (value(t + h) - value(t - h)) / (2 * h)
        assert torch.allclose(slope(t), numeric, rtol=1e-6, atol=1e-8)


def test_cosine_and_linear_closed_forms():
    cosine, linear = CosineVP(), LinearVP()
    assert cosine.alpha(0.5) == pytest.approx(math.cos(math.pi / 4), abs=1e-7)
    assert cosine.log_snr(0.5) == pytest.approx(0.0, abs=1e-7)
    assert linear.alpha(1.0) == pytest.approx(math.exp(-19.9 / 4 - 0.05), rel=1e-6)  # beta_min 0.1, beta_max 20


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_timesteps_decrease_from_t_max_to_t_min(schedule):
    for n in (1, 2, 4, 50):
        times = schedule.timesteps(n)
        assert times.shape == (n + 1,)
        assert (times.diff() < 0).all()
        assert times[0].item() == pytest.approx(schedule.t_max) and times[-1].item() == pytest.approx(schedule.t_min)
    assert schedule.timesteps(3, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_timesteps_refuse_fewer_than_one_step(n):
    with pytest.raises(ConfigError, match="at least 1 step"):
        CosineVP().timesteps(n)


def test_bad_schedule_settings_are_config_errors():
    with pytest.raises(ConfigError, match="t_min < t_max"):
        CosineVP(t_min=0.5, t_max=0.4)
    with pytest.raises(ConfigError, match="beta_min < beta_max"):
        LinearVP(beta_min=5, beta_max=1)
    with pytest.raises(ConfigError, match="unknown noise schedule"):
        make_schedule("sigmoid")
    assert isinstance(make_schedule("linear"), LinearVP) and isinstance(make_schedule(), CosineVP)
    assert isinstance(make_schedule(CosineVP()), VPSchedule)


def test_score_from_denoiser_is_the_tweedie_formula_per_sample():
    x_t = torch.randn(3, 2, dtype=torch.float64)
    x0 = torch.randn(3, 2, dtype=torch.float64)
    alpha = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    sigma = (1 - alpha**2).sqrt()
    score = score_from_denoiser(x_t, x0, alpha, sigma)
    for i in range(3):
        expected = -(x_t[i] - alpha[i] * x0[i]) / sigma[i] ** 2
        assert torch.allclose(score[i], expected, atol=1e-14)
    assert torch.allclose(x0, (x_t + per_sample(sigma, x_t) ** 2 * score) / per_sample(alpha, x_t), atol=1e-12)
    image = torch.randn(3, 1, 4, 4)
    assert score_from_denoiser(image, image, alpha.float(), sigma.float()).shape == image.shape


class Reversed(CosineVP):
    """A schedule running backwards: noise falls as t rises."""

    def alpha(self, t):
        return super().sigma(t)

    def sigma(self, t):
        return super().alpha(t)


class NotPreserving(CosineVP):
    def sigma(self, t):
        return 0.5 * super().sigma(t)


def test_a_schedule_that_is_not_increasing_is_refused_naming_where():
    with pytest.raises(ConfigError, match=r"is not increasing: sigma\(t\) must rise .* from t=0\.001 to t="):
        make_schedule(Reversed())


def test_a_schedule_that_is_not_variance_preserving_is_refused():
    with pytest.raises(ConfigError, match="not variance preserving"):
        make_schedule(NotPreserving())


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_the_shipped_schedules_pass_the_check(schedule):
    assert make_schedule(schedule) is schedule
