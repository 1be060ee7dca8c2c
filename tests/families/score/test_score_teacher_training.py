"""The MLP denoiser and its denoising-score-matching trainer (families/score/teacher_training.py)."""

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.teacher_training import WEIGHTINGS, denoising_loss, loss_weight, train_denoiser
from nbdistill.models import MLPDenoiser
from nbdistill.models.denoiser import sinusoidal_embedding

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: a second thread only contends

MEAN, STD = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.5


def gaussian_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MEAN + STD * torch.randn(n, 2, generator=g, dtype=torch.float64)


def tweedie(x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x | x_t] for x ~ N(m, s² I): m + α s² / (α² s² + σ²) · (x_t − α m) (Gaussian conditioning)."""
    gain = alpha * STD**2 / (alpha**2 * STD**2 + sigma**2)
    return MEAN + gain[:, None] * (x_t - alpha[:, None] * MEAN)


def small_denoiser(seed: int = 0) -> MLPDenoiser:
    torch.manual_seed(seed)
    return MLPDenoiser(2, hidden=64, depth=3, time_embedding=16).double()


def denoiser_error(model, schedule, seed: int = 5) -> dict[float, float]:
    """RMS of D(x_t, t) − E[x | x_t] over x_t ~ p_t, at a few t."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t_value in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        x = gaussian_data(2000, seed + 1)
        t = torch.full((len(x),), t_value, dtype=torch.float64)
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        x_t = alpha[:, None] * x + sigma[:, None] * torch.randn(x.shape, generator=g, dtype=torch.float64)
        with torch.no_grad():
            out[t_value] = (model(x_t, t) - tweedie(x_t, alpha, sigma)).pow(2).sum(1).mean().sqrt().item()
    return out


@pytest.fixture(scope="module")
def trained():
    schedule = CosineVP()
    model = small_denoiser()
    before = denoiser_error(model, schedule)
    losses = train_denoiser(model, gaussian_data(20000, 0), schedule, 1500, 256, 3e-3, torch.Generator().manual_seed(0))
    return model, losses, before, denoiser_error(model, schedule)


def test_trained_denoiser_approaches_the_tweedie_denoiser(trained):
    """On N(m, 0.25 I) the trained D is within 0.06 (RMS, data units; the data's own spread is 0.71) of the
    exact E[x | x_t] at every noise level, and at least 4× closer than the untrained network from t = 0.2
    on (below, the v-parametrisation's skip D → x_t already makes the untrained net close). Measured on
    the machine that set them: 0.007-0.042 after training (1 500 steps, float64), 0.19-1.1 before."""
    model, _, before, after = trained
    assert not model.training
    for t, err in after.items():
        assert err < 0.06, (t, after)
        if t >= 0.2:
            assert err < before[t] / 4, (t, before, after)


class Tweedie(torch.nn.Module):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def forward(self, x_t, t):
        return tweedie(x_t, self.schedule.alpha(t), self.schedule.sigma(t))


def test_loss_decreases_to_the_exact_denoisers_loss(trained):
    """Most of the loss is irreducible (x is not a function of x_t): the curve's excess over the exact
    denoiser's loss (the floor, ~0.50) falls at least 5-fold from its first 100 steps to its last 100."""
    _, losses, _, _ = trained
    assert len(losses) == 1500 and all(torch.isfinite(torch.tensor(losses)))
    schedule, g = CosineVP(), torch.Generator().manual_seed(11)
    t = schedule.t_min + (schedule.t_max - schedule.t_min) * torch.rand(100_000, generator=g, dtype=torch.float64)
    eps = torch.randn(100_000, 2, generator=g, dtype=torch.float64)
    floor = denoising_loss(Tweedie(schedule), gaussian_data(100_000, 12), t, eps, schedule).item()
    first, last = sum(losses[:100]) / 100, sum(losses[-100:]) / 100
    assert last - floor < (first - floor) / 5, (first, last, floor)
    assert last > floor - 0.02  # the exact denoiser is optimal: the curve cannot go far below it


def test_training_is_seeded():
    schedule, data = CosineVP(), gaussian_data(500, 0)
    runs = []
    for seed in (0, 0, 1):
        model = small_denoiser()
        losses = train_denoiser(model, data, schedule, 20, 32, 1e-3, torch.Generator().manual_seed(seed), ema_decay=0.9)
        runs.append((losses, model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())
    assert runs[0][0] != runs[2][0]


def test_weightings():
    """w = SNR + 1, max(SNR, 1) or 1; the SNR + 1 weighted x0 error of the v-parametrised net is its v-MSE."""
    schedule = CosineVP()
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    snr = (schedule.alpha(t) / schedule.sigma(t)) ** 2
    assert torch.allclose(loss_weight(schedule, t, "snr+1"), snr + 1)
    assert torch.allclose(loss_weight(schedule, t, "truncated-snr"), torch.maximum(snr, torch.ones(3, dtype=torch.float64)))
    assert torch.equal(loss_weight(schedule, t, "x0"), torch.ones(3, dtype=torch.float64))
    assert set(WEIGHTINGS) == {"snr+1", "truncated-snr", "x0"}
    model = small_denoiser()
    g = torch.Generator().manual_seed(3)
    x, eps = gaussian_data(64, 1), torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.98 + 0.01
    alpha, sigma = schedule.alpha(t)[:, None], schedule.sigma(t)[:, None]
    x_t, v = alpha * x + sigma * eps, alpha * eps - sigma * x
    with torch.no_grad():
        f = model.net(torch.cat([x_t, sinusoidal_embedding(t, 16)], 1))
        v_mse = (f - v).pow(2).mean()
        assert torch.allclose(denoising_loss(model, x, t, eps, schedule, "snr+1"), v_mse, rtol=1e-10)


def test_denoiser_module():
    model = MLPDenoiser(2, hidden=16, depth=2, time_embedding=8)
    assert (model.dim, model.hidden, model.depth, model.time_embedding, model.parametrization) == (2, 16, 2, 8, "v")
    x = torch.randn(5, 2)
    assert model(x, torch.rand(5)).shape == (5, 2) and model(x, 0.3).shape == (5, 2)
    assert torch.equal(model(x, 0.0), x)  # v-parametrisation: D(x, 0) = x exactly
    assert not torch.equal(MLPDenoiser(2, 16, 2, 8, parametrization="x0")(x, 0.0), x)
    digits = MLPDenoiser(64, hidden=32, depth=2)
    assert digits(torch.randn(3, 1, 8, 8), torch.rand(3)).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="expects 2 features per sample, got 3"):
        model(torch.randn(4, 3), 0.5)
    with pytest.raises(ConfigError, match="parametrization must be one of"):
        MLPDenoiser(parametrization="eps")
    with pytest.raises(ConfigError, match="time_embedding must be an even number"):
        MLPDenoiser(time_embedding=7)


class Scalar(torch.nn.Module):
    def forward(self, x_t, t):
        return x_t.sum(1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": Scalar()}, r"must return an x0-prediction of the input's shape \(2, 2\), got \(2,\)"),
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"weighting": "eps"}, "unknown weighting 'eps'"),
        ({"t_range": (0.0, 1.0)}, "t_min = 0 divides by"),
        ({"t_range": (0.5, 0.2)}, "0 <= t_min < t_max <= 1"),
        ({"x_data": torch.zeros(10, dtype=torch.long)}, "x_data must be a tensor of shape"),
        ({"x_data": torch.zeros(10, 2, dtype=torch.long)}, "x_data must be a floating-point tensor"),
        ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
    ],
)
def test_bad_input_is_refused_before_training(kwargs, message):
    model = kwargs.pop("model", small_denoiser())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = {"x_data": gaussian_data(10, 0), "steps": 5, "batch_size": 4, "lr": 1e-3, **kwargs}
    with pytest.raises(ConfigError, match=message):
        train_denoiser(model, schedule=CosineVP(), generator=torch.Generator().manual_seed(0), **args)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
