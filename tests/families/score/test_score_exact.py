"""The exact Gaussian-mixture teacher: closed-form score and denoiser against autograd and by hand (float64)."""

import math

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.schedule import CosineVP, LinearVP

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: one thread is fastest
F64 = torch.float64


def _full_cov_mixture() -> GaussianMixture:
    """Three components with full, different covariances and unequal weights."""
    means = [[-2.0, 0.5], [1.5, 1.0], [0.0, -2.0]]
    covs = [[[0.3, 0.1], [0.1, 0.2]], [[0.05, -0.02], [-0.02, 0.4]], [[1.0, 0.0], [0.0, 0.1]]]
    return GaussianMixture(means, covs, [0.5, 0.3, 0.2])


MIXTURES = {"full": _full_cov_mixture, "ring": GaussianMixture.ring, "grid": GaussianMixture.grid}


@pytest.mark.parametrize("name", MIXTURES)
@pytest.mark.parametrize("alpha", [0.999, 0.7, 0.2, 0.01])
def test_score_equals_autograd_of_the_noisy_log_density(name, alpha):
    mixture = MIXTURES[name]()
    sigma = math.sqrt(1 - alpha**2)
    x = (3 * torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(0))).requires_grad_()
    (grad,) = torch.autograd.grad(mixture.noisy_log_prob(x, alpha, sigma).sum(), x)
    assert torch.allclose(mixture.score(x.detach(), alpha, sigma), grad, rtol=1e-10, atol=1e-10)


def test_score_with_one_time_per_sample_equals_the_scalar_calls():
    mixture, x = _full_cov_mixture(), torch.randn(5, 2, dtype=F64)
    alpha = torch.tensor([0.99, 0.8, 0.5, 0.2, 0.05], dtype=F64)
    sigma = (1 - alpha**2).sqrt()
    batched = mixture.score(x, alpha, sigma)
    for i in range(5):
        assert torch.allclose(batched[i], mixture.score(x[i : i + 1], alpha[i].item(), sigma[i].item())[0], atol=1e-13)


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_denoiser_returns_x_over_alpha_as_sigma_goes_to_zero(alpha):
    mixture, x = _full_cov_mixture(), torch.randn(32, 2, dtype=F64)
    for sigma in (1e-4, 1e-6):
        assert torch.allclose(mixture.denoise(x, alpha, sigma), x / alpha, atol=1e3 * sigma**2 / alpha**2 + 1e-12)


def test_denoiser_at_pure_noise_returns_the_data_mean():
    mixture = _full_cov_mixture()
    out = mixture.denoise(torch.randn(8, 2, dtype=F64), 0.0, 1.0)
    assert torch.allclose(out, mixture.mean().expand(8, 2), atol=1e-14)


@pytest.mark.parametrize("alpha", [0.95, 0.5, 0.1])
def test_tweedie_identity_links_denoiser_and_score(alpha):
    mixture, x = _full_cov_mixture(), 2 * torch.randn(64, 2, dtype=F64)
    sigma = math.sqrt(1 - alpha**2)
    tweedie = (x + sigma**2 * mixture.score(x, alpha, sigma)) / alpha
    assert torch.allclose(mixture.denoise(x, alpha, sigma), tweedie, rtol=1e-10, atol=1e-10)


def test_single_gaussian_by_hand():
    m, s = torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
    gaussian = GaussianMixture(m[None], s[None])
    alpha, sigma = 0.6, 0.8
    c = alpha**2 * s + sigma**2 * torch.eye(2, dtype=F64)
    x = torch.tensor([[0.3, 0.4], [-1.0, 2.0]], dtype=F64)
    diff = x - alpha * m
    assert torch.allclose(gaussian.score(x, alpha, sigma), -diff @ torch.linalg.inv(c), atol=1e-13)  # C symmetric
    posterior_mean = m + alpha * diff @ torch.linalg.inv(c) @ s
    assert torch.allclose(gaussian.denoise(x, alpha, sigma), posterior_mean, atol=1e-13)
    expected = torch.distributions.MultivariateNormal(alpha * m, c).log_prob(x)
    assert torch.allclose(gaussian.noisy_log_prob(x, alpha, sigma), expected, atol=1e-12)
    assert torch.allclose(gaussian.noisy(alpha, sigma).log_prob(x), expected, atol=1e-12)


def test_log_prob_matches_torch_distributions():
    mixture = _full_cov_mixture()
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(mixture.weights), torch.distributions.MultivariateNormal(mixture.means, mixture.covs)
    )
    x = 2 * torch.randn(50, 2, dtype=F64)
    assert torch.allclose(mixture.log_prob(x), reference.log_prob(x), atol=1e-12)


def test_samples_are_seeded_and_have_the_mixture_moments():
    mixture = _full_cov_mixture()
    a = mixture.sample(40_000, torch.Generator().manual_seed(1))
    b = mixture.sample(40_000, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == F64 and a.shape == (40_000, 2)
    assert torch.allclose(a.mean(0), mixture.mean(), atol=0.03)  # standard error about 0.008 per axis
    assert torch.allclose(torch.cov(a.T), mixture.covariance(), atol=0.05)


def test_component_of_recovers_the_generating_component_for_separated_modes():
    mixture = GaussianMixture.ring(k=8, radius=2.0, std=0.2)
    x, comps = mixture.sample(2000, torch.Generator().manual_seed(2), return_labels=True)
    assert (mixture.component_of(x) == comps).float().mean() > 0.999
    assert torch.bincount(comps, minlength=8).min() > 150  # every mode drawn


def test_presets_have_the_documented_layout():
    ring = GaussianMixture.ring(k=8, radius=2.0, std=0.2)
    assert torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=F64))
    assert torch.allclose(ring.mean(), torch.zeros(2, dtype=F64), atol=1e-14)
    grid = GaussianMixture.grid(k=5, spacing=1.0, std=0.1)
    assert grid.num_components == 25 and sorted(set(grid.means[:, 0].tolist())) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert torch.allclose(grid.covs[0], 0.01 * torch.eye(2, dtype=F64))


def test_class_conditional_mixture_uses_only_the_class_components():
    mixture = GaussianMixture.ring(k=8, radius=2.0, std=0.2, classes=2)
    assert mixture.num_classes == 2 and mixture.classes.tolist() == [0, 1] * 4
    sub = GaussianMixture(mixture.means[1::2], mixture.covs[1::2])  # class 1's components, renormalised
    x = 2 * torch.randn(20, 2, dtype=F64)
    y = torch.ones(20, dtype=torch.long)
    assert torch.allclose(mixture.denoise(x, 0.5, 0.8, y), sub.denoise(x, 0.5, 0.8), atol=1e-12)
    assert torch.allclose(mixture.score(x, 0.5, 0.8, y), sub.score(x, 0.5, 0.8), atol=1e-12)
    assert torch.allclose(mixture.log_prob(x, y), sub.log_prob(x), atol=1e-12)
    x1, comps = mixture.sample(500, torch.Generator().manual_seed(0), return_labels=True, y=1)
    assert (comps % 2 == 1).all()
    with pytest.raises(ConfigError, match="no classes"):
        _full_cov_mixture().denoise(x, 0.5, 0.8, y)
    with pytest.raises(ConfigError, match="classes the mixture does not have"):
        mixture.denoise(x, 0.5, 0.8, torch.full((20,), 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(means=[1.0, 2.0]), r"\[K, d\] array"),
        (dict(means=[[0.0, 0.0]], covs=[[[1.0, 0.0], [0.0, -1.0]]]), "not positive definite"),
        (dict(means=[[0.0, 0.0]], covs=[[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
        (dict(means=[[0.0, 0.0]], covs=[[1.0]]), r"\[K, d, d\]"),
        (dict(means=[[0.0, 0.0]], stds=0.0), "stds must be > 0"),
        (dict(means=[[0.0, 0.0]], stds=[1.0, 1.0, 1.0]), "stds must be"),
        (dict(means=[[0.0, 0.0]], stds=1.0, covs=[[1.0, 0.0], [0.0, 1.0]]), "not both"),
        (dict(means=[[0.0], [1.0]], weights=[1.5, -0.5]), ">= 0"),
        (dict(means=[[0.0], [1.0]], weights=[1.0]), "one entry per component"),
        (dict(means=[[0.0], [float("nan")]]), "NaN"),
        (dict(means=[[0.0], [1.0]], classes=[0]), "one class index"),
    ],
)
def test_bad_mixtures_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GaussianMixture(**kwargs)


def test_unnormalised_weights_are_normalised_with_a_warning():
    with pytest.warns(UserWarning, match="sum to 4, not 1"):
        mixture = GaussianMixture([[0.0], [1.0], [2.0]], weights=[1, 2, 1])
    assert torch.allclose(mixture.weights, torch.tensor([0.25, 0.5, 0.25], dtype=F64))


def test_wrong_input_dimension_is_a_config_error():
    with pytest.raises(ConfigError, match=r"shape \[B, 2\]"):
        GaussianMixture.ring().score(torch.zeros(4, 3), 0.5, 0.5)


@pytest.mark.parametrize("schedule", [CosineVP(), LinearVP()], ids=repr)
def test_exact_denoiser_module_is_the_mixture_denoiser_at_the_schedule_times(schedule):
    mixture = GaussianMixture.ring()
    teacher = ExactDenoiser(mixture, schedule)
    assert list(teacher.parameters()) == []
    x, t = torch.randn(6, 2, dtype=F64), torch.linspace(0.1, 0.9, 6, dtype=F64)
    out = teacher(x, t)
    for i in range(6):
        a, s = schedule.alpha(t[i]), schedule.sigma(t[i])
        assert torch.allclose(out[i], mixture.denoise(x[i : i + 1], a, s)[0], atol=1e-13)
    assert teacher(x.float(), 0.5).dtype == torch.float32
    assert torch.allclose(teacher.score(x, t), mixture.score(x, schedule.alpha(t), schedule.sigma(t)), atol=1e-13)
