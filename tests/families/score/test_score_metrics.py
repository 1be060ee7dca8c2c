"""Sample metrics of the score family against scipy/numpy re-implementations and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import cdist

from nbdistill.core.errors import ConfigError
from nbdistill.families.score import metrics as M
from nbdistill.families.score.exact import GaussianMixture


def ring(k=8, radius=2.0, std=0.1):
    return GaussianMixture.ring(k=k, radius=radius, std=std)


def one_component(mix, component, n, generator):
    """``n`` samples of one component of ``mix``."""
    return GaussianMixture(mix.means[component : component + 1], mix.covs[component]).sample(n, generator)


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


def normal(n, d=2, seed=0, shift=0.0):
    return torch.randn(n, d, generator=rng(seed), dtype=torch.float64) + shift


# -- energy distance --------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m", [(50, 50), (37, 81), (1, 9)])
def test_energy_distance_in_1d_is_the_square_of_scipys(n, m):
    u, v = normal(n, 1, seed=1), normal(m, 1, seed=2, shift=0.7)
    expected = scipy.stats.energy_distance(u.ravel().numpy(), v.ravel().numpy()) ** 2
    assert M.energy_distance(u, v) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert M.energy_distance(u.ravel(), v.ravel()) == pytest.approx(expected, rel=1e-10, abs=1e-12)  # [n] = n 1-D points


def numpy_energy(x, y, unbiased):
    x, y = np.asarray(x), np.asarray(y)
    n, m = len(x), len(y)
    xx = cdist(x, x).sum() / (n * (n - 1) if unbiased else n * n)
    yy = cdist(y, y).sum() / (m * (m - 1) if unbiased else m * m)
    return 2 * cdist(x, y).mean() - xx - yy


@pytest.mark.parametrize("unbiased", [False, True])
def test_energy_distance_in_2d_matches_a_numpy_reimplementation_with_small_chunks(unbiased, monkeypatch):
    x, y = normal(120, seed=3), normal(75, seed=4, shift=0.3)
    expected = numpy_energy(x, y, unbiased)
    assert M.energy_distance(x, y, unbiased=unbiased) == pytest.approx(expected, rel=1e-10)
    monkeypatch.setattr(M, "CHUNK_BYTES", 8 * 75 * 7)  # 7 rows a chunk: 18 chunks, the last one short
    assert M.energy_distance(x, y, unbiased=unbiased) == pytest.approx(expected, rel=1e-10)


def test_energy_distance_is_symmetric_zero_for_identical_sets_and_grows_with_the_shift():
    x, y = normal(200, seed=5), normal(150, seed=6, shift=0.5)
    assert M.energy_distance(x, y) == pytest.approx(M.energy_distance(y, x), rel=1e-12)
    assert M.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert M.energy_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-12)
    far = M.energy_distance(x, normal(150, seed=6, shift=2.0))
    assert 0 < M.energy_distance(x, y) < far


def test_float32_and_numpy_inputs_are_computed_in_float64():
    x, y = normal(60, seed=7), normal(40, seed=8, shift=0.2)
    expected = M.energy_distance(x, y)
    assert M.energy_distance(x.numpy(), y.numpy()) == expected
    assert M.energy_distance(x.float(), y.float()) == pytest.approx(expected, rel=1e-6)


# -- sliced Wasserstein ------------------------------------------------------------------------------
def lcm_wasserstein(u, v, p):
    """W_p^p of two 1-D empirical sets by repeating each to the common size (independent of the merge)."""
    n, m = len(u), len(v)
    size = n * m // math.gcd(n, m)
    a, b = np.sort(np.repeat(u, size // n)), np.sort(np.repeat(v, size // m))
    return float(np.mean(np.abs(a - b) ** p))


@pytest.mark.parametrize("n, m", [(40, 40), (30, 45), (7, 12)])
def test_each_slice_is_scipys_wasserstein_distance_of_the_projections(n, m):
    x, y = normal(n, seed=9), normal(m, seed=10, shift=0.4)
    directions = M.random_directions(2, 16, rng(3))
    assert torch.allclose(directions.norm(dim=1), torch.ones(16, dtype=torch.float64))
    slices = [scipy.stats.wasserstein_distance((x @ t).numpy(), (y @ t).numpy()) for t in directions]
    assert M.sliced_wasserstein(x, y, directions=directions) == pytest.approx(np.mean(slices), rel=1e-10)
    per_slice = M.wasserstein_1d((x @ directions.T).T, (y @ directions.T).T, p=1)
    np.testing.assert_allclose(per_slice.numpy(), slices, rtol=1e-10)


@pytest.mark.parametrize("n, m", [(30, 45), (6, 4), (25, 25)])
def test_sw2_is_the_root_mean_of_exact_1d_w2_squared(n, m):
    x, y = normal(n, seed=11), normal(m, seed=12, shift=0.4)
    directions = M.random_directions(2, 8, rng(4))
    expected = math.sqrt(np.mean([lcm_wasserstein((x @ t).numpy(), (y @ t).numpy(), 2) for t in directions]))
    assert M.sliced_wasserstein(x, y, p=2, directions=directions) == pytest.approx(expected, rel=1e-10)


def test_sliced_wasserstein_is_symmetric_zero_for_identical_sets_and_deterministic_given_a_generator():
    x, y = normal(300, seed=13), normal(200, seed=14, shift=0.5)
    assert M.sliced_wasserstein(x, y) == pytest.approx(M.sliced_wasserstein(y, x), rel=1e-12)
    assert M.sliced_wasserstein(x, x) == 0.0
    assert M.sliced_wasserstein(x, y, generator=rng(1)) == M.sliced_wasserstein(x, y, generator=rng(1))
    assert M.sliced_wasserstein(x, y, generator=rng(1)) != M.sliced_wasserstein(x, y, generator=rng(2))
    assert M.sliced_wasserstein(x, y) == M.sliced_wasserstein(x, y, generator=rng(M.DEFAULT_SEED))  # None = a fixed seed


def test_sliced_wasserstein_of_a_shift_along_a_line_is_the_mean_projected_shift():
    x = normal(500, seed=15)
    directions = M.random_directions(2, 64, rng(5))
    shift = torch.tensor([0.8, 0.0], dtype=torch.float64)
    # a translation moves each projection by <θ, shift>: W1 of the slice is |θ_1| · 0.8
    expected = float((directions[:, 0].abs() * 0.8).mean())
    assert M.sliced_wasserstein(x, x + shift, directions=directions) == pytest.approx(expected, rel=1e-10)


# -- MMD ----------------------------------------------------------------------------------------------
def numpy_mmd(x, y, h, unbiased):
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * h * h))  # noqa: E731
    x, y = np.asarray(x), np.asarray(y)
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    if unbiased:
        xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    else:
        xx, yy = kxx.mean(), kyy.mean()
    return xx + yy - 2 * k(x, y).mean()


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("bandwidth", [0.5, None])
def test_mmd_matches_a_numpy_reimplementation(unbiased, bandwidth, monkeypatch):
    x, y = normal(90, seed=16), normal(60, seed=17, shift=0.3)
    pooled = np.concatenate([x.numpy(), y.numpy()])
    h = bandwidth or float(np.median(scipy.spatial.distance.pdist(pooled)))  # the median heuristic, all 150 points
    assert M.median_bandwidth(x, y) == pytest.approx(float(np.median(scipy.spatial.distance.pdist(pooled))), rel=1e-12)
    expected = numpy_mmd(x, y, h, unbiased)
    assert M.mmd(x, y, bandwidth=bandwidth, unbiased=unbiased) == pytest.approx(expected, rel=1e-9)
    monkeypatch.setattr(M, "CHUNK_BYTES", 8 * 90 * 11)
    assert M.mmd(x, y, bandwidth=bandwidth, unbiased=unbiased) == pytest.approx(expected, rel=1e-9)


def test_biased_mmd_of_a_set_with_itself_is_zero_and_symmetric():
    x, y = normal(150, seed=18), normal(100, seed=19, shift=0.4)
    assert M.mmd(x, x) == pytest.approx(0.0, abs=1e-14)
    assert M.mmd(x, y) == pytest.approx(M.mmd(y, x), rel=1e-12)
    assert M.mmd(x, y) > 0


def test_unbiased_mmd_has_mean_zero_over_draws_where_the_biased_one_does_not():
    draws = 200
    biased, unbiased = [], []
    for i in range(draws):
        x, y = normal(40, seed=1000 + 2 * i), normal(40, seed=1001 + 2 * i)
        biased.append(M.mmd(x, y, bandwidth=1.0))
        unbiased.append(M.mmd(x, y, bandwidth=1.0, unbiased=True))
    unbiased, biased = np.array(unbiased), np.array(biased)
    stderr = unbiased.std(ddof=1) / math.sqrt(draws)
    assert abs(unbiased.mean()) < 3.5 * stderr  # the U-statistic is unbiased for MMD² = 0
    assert (unbiased < 0).any()
    assert biased.mean() > 10 * stderr and (biased > 0).all()  # the V-statistic carries a positive bias


def test_median_heuristic_on_many_points_uses_a_generator_drawn_subset():
    x, y = normal(900, seed=20), normal(900, seed=21)
    assert M.median_bandwidth(x, y, rng(1)) == M.median_bandwidth(x, y, rng(1))
    assert M.median_bandwidth(x, y, rng(1)) != M.median_bandwidth(x, y, rng(2))
    # the median of ‖N(0, 2I)‖ in 2-D: √2 times the Rayleigh median √(2 ln 2)
    assert M.median_bandwidth(x, y, rng(1)) == pytest.approx(2.0 * math.sqrt(math.log(2)), rel=0.05)
    same = torch.zeros(5, 2, dtype=torch.float64)
    assert M.median_bandwidth(same, same) == 1.0  # every pair coincides: a finite fallback


# -- against a density -----------------------------------------------------------------------------------
def test_mode_coverage_is_one_for_the_mixture_and_one_over_k_for_one_component():
    mix = ring(k=8)
    assert M.mode_coverage(mix.sample(2000, rng(1)), mix) == 1.0
    assert M.mode_coverage(one_component(mix, 3, 2000, rng(2)), mix) == pytest.approx(1 / 8)
    two = torch.cat([one_component(mix, 0, 500, rng(3)), one_component(mix, 5, 500, rng(4))])
    assert M.mode_coverage(two, mix) == pytest.approx(2 / 8)


def test_mode_coverage_ignores_a_few_stray_samples_by_default_and_counts_them_with_min_count_1():
    mix = ring(k=4)
    stray = torch.cat([one_component(mix, 0, 997, rng(5)), one_component(mix, 2, 3, rng(6))])
    assert M.mode_coverage(stray, mix) == pytest.approx(1 / 4)  # min_count = ceil(0.05 · 1000 / 4) = 13
    assert M.mode_coverage(stray, mix, min_count=1) == pytest.approx(2 / 4)
    assert M.mode_coverage(stray, mix, min_count=998) == 0.0


def test_mode_coverage_counts_only_samples_near_their_mode():
    mix = ring(k=8, radius=2.0, std=0.1)
    blob = 0.3 * normal(2000, seed=21)  # between the modes: each nearest component gets a share
    assert M.mode_coverage(blob, mix, within=None) == 1.0
    assert M.mode_coverage(blob, mix) == 0.0
    assert M.mode_precision(blob, mix) == 0.0
    own = mix.sample(20000, rng(22))
    assert M.mode_precision(own, mix) == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # P(χ²₂ ≤ 9), stderr 0.0007
    assert M.mode_precision(own, mix, within=1.0) == pytest.approx(1 - math.exp(-0.5), abs=0.01)


def test_mode_coverage_measures_mahalanobis_distance_with_each_components_covariance():
    mix = GaussianMixture([[0.0, 0.0], [10.0, 0.0]], [[[4.0, 0.0], [0.0, 0.01]], [[1.0, 0.0], [0.0, 1.0]]])
    x = torch.tensor([[5.5, 0.0], [0.0, 0.35], [10.0, 2.5]], dtype=torch.float64)  # 2.75σ, 3.5σ, 2.5σ
    np.testing.assert_array_equal(M.near_mode(x, mix, mix.component_of(x), 3.0).numpy(), [True, False, True])
    assert M.mode_precision(x, mix) == pytest.approx(2 / 3)


def test_mean_log_likelihood_of_a_gaussian_is_minus_its_closed_form_entropy():
    cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    gauss = GaussianMixture([[0.3, -1.0]], cov)
    x = gauss.sample(20000, rng(7))
    entropy = 0.5 * float(torch.logdet(2 * math.pi * math.e * cov))  # ½ log det(2πe Σ)
    # log p = const − ½ (x − μ)ᵀ Σ⁻¹ (x − μ): its standard deviation is 1 (half a χ²₂), stderr 0.007
    assert M.mean_log_likelihood(x, gauss) == pytest.approx(-entropy, abs=0.03)


def test_mean_log_likelihood_of_a_mixture_is_minus_its_entropy_on_a_grid():
    mix = ring(k=8, radius=2.0, std=0.3)
    grid = torch.linspace(-4, 4, 801, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    log_p = mix.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1))
    cell = float(grid[1] - grid[0]) ** 2
    assert float(log_p.exp().sum()) * cell == pytest.approx(1.0, abs=1e-4)
    entropy = -float((log_p.exp() * log_p).sum()) * cell  # −∫ p log p, by quadrature
    x = mix.sample(20000, rng(8))
    assert M.mean_log_likelihood(x, mix) == pytest.approx(-entropy, abs=0.03)


def test_sample_metrics_returns_every_metric_that_applies_under_stable_names():
    mix = ring(k=8)
    data, samples = mix.sample(600, rng(9)), one_component(mix, 1, 400, rng(10))
    assert list(M.sample_metrics(samples, data)) == ["energy_distance", "sliced_wasserstein", "mmd"]
    full = M.sample_metrics(samples, data, density=mix)
    assert list(full) == list(M.METRICS)
    assert list(full) == ["energy_distance", "sliced_wasserstein", "mmd", "mode_coverage", "mode_precision", "log_likelihood"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in full.values())
    assert full == M.sample_metrics(samples, data, density=mix)  # a fixed seed without a generator
    assert full == M.sample_metrics(samples, data, density=mix, generator=rng(M.DEFAULT_SEED))
    g = rng(M.DEFAULT_SEED)
    assert full["sliced_wasserstein"] == M.sliced_wasserstein(samples, data, generator=g)
    assert full["mmd"] == M.mmd(samples, data, generator=g)  # the same generator, drawn from in that order
    assert full["energy_distance"] == M.energy_distance(samples, data)
    assert full["mode_coverage"] == pytest.approx(1 / 8)
    assert full["mode_precision"] == M.mode_precision(samples, mix) > 0.95
    assert full["log_likelihood"] == M.mean_log_likelihood(samples, mix)
    good = M.sample_metrics(mix.sample(400, rng(11)), data, density=mix)
    for name in ("energy_distance", "sliced_wasserstein", "mmd"):
        assert good[name] < full[name] / 5  # samples of the mixture are far closer than one collapsed mode


def test_sample_metrics_skips_what_the_density_cannot_give():
    class LogProbOnly:
        def log_prob(self, x):
            return -(x**2).sum(1)

    x = normal(50, seed=12)
    assert list(M.sample_metrics(x, normal(50, seed=13), density=LogProbOnly())) == [
        "energy_distance",
        "sliced_wasserstein",
        "mmd",
        "log_likelihood",
    ]


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", [M.energy_distance, M.sliced_wasserstein, M.mmd, M.sample_metrics])
def test_bad_input_is_a_config_error_naming_it(metric):
    good = normal(10)
    with pytest.raises(ConfigError, match=r"different dimensions \(2 vs 3"):
        metric(good, normal(10, d=3))
    with pytest.raises(ConfigError, match=r"^y is empty \(shape \(0, 2\)\)"):
        metric(good, torch.zeros(0, 2))
    with pytest.raises(ConfigError, match=r"^x is empty"):
        metric(torch.zeros(0, 2), good)
    bad = good.clone()
    bad[3, 1] = float("nan")
    bad[7, 0] = float("inf")
    with pytest.raises(ConfigError, match=r"^x has 2 non-finite value\(s\) \(NaN or inf\) in 2 of its 10 points"):
        metric(bad, good)
    with pytest.raises(ConfigError, match="x must be points of shape"):
        metric(torch.tensor(1.0), good)


def test_bad_options_are_config_errors():
    x = normal(10)
    with pytest.raises(ConfigError, match="unbiased energy distance needs at least 2 points per set, got 10 and 1"):
        M.energy_distance(x, x[:1], unbiased=True)
    with pytest.raises(ConfigError, match="unbiased MMD needs at least 2 points"):
        M.mmd(x[:1], x, unbiased=True)
    with pytest.raises(ConfigError, match="bandwidth must be a positive finite number or None"):
        M.mmd(x, x, bandwidth=0.0)
    with pytest.raises(ConfigError, match="projections must be a positive integer, got 0"):
        M.sliced_wasserstein(x, x, projections=0)
    with pytest.raises(ConfigError, match=r"p is 1 \(SW1\) or 2 \(SW2\), got 3"):
        M.sliced_wasserstein(x, x, p=3)
    with pytest.raises(ConfigError, match=r"directions must be \[k, 2\]"):
        M.sliced_wasserstein(x, x, directions=torch.ones(4, 3))
    with pytest.raises(ConfigError, match="generator must be a torch.Generator"):
        M.sliced_wasserstein(x, x, generator=0)


def test_bad_densities_are_config_errors():
    mix = ring(k=4)
    x = mix.sample(20, rng(1))
    with pytest.raises(ConfigError, match="mode_coverage needs a mixture with component_of"):
        M.mode_coverage(x, object())
    with pytest.raises(ConfigError, match="mean_log_likelihood needs a density with log_prob"):
        M.mean_log_likelihood(x, object())
    with pytest.raises(ConfigError, match="within must be a positive number of standard deviations or None, got -1"):
        M.mode_coverage(x, mix, within=-1)
    with pytest.raises(ConfigError, match="mode_precision needs within"):
        M.mode_precision(x, mix, within=None)

    class NoCovariances:
        num_components = 4

        def component_of(self, x):
            return torch.zeros(len(x), dtype=torch.long)

    with pytest.raises(
        ConfigError, match=r"mode_coverage with within=3.0 needs the mixture's means and covariances .* pass within=None"
    ):
        M.mode_coverage(x, NoCovariances())
    assert M.mode_coverage(x, NoCovariances(), within=None) == 0.25
    assert "mode_coverage" in M.sample_metrics(x, x, density=NoCovariances())  # every sample counts: no covariances to measure
    with pytest.raises(ConfigError, match="min_count must be a positive integer"):
        M.mode_coverage(x, mix, min_count=0)
    nan = x.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="^samples has 1 non-finite"):
        M.mode_coverage(nan, mix)

    class Unsized:
        def component_of(self, x):
            return torch.zeros(len(x), dtype=torch.long)

    with pytest.raises(ConfigError, match="says how many components it has"):
        M.mode_coverage(x, Unsized())

    class OutOfRange(GaussianMixture):
        def component_of(self, x):
            return torch.full((len(x),), 9)

    with pytest.raises(ConfigError, match=r"component_of must give one component index in \[0, 4\) per sample"):
        M.mode_coverage(x, OutOfRange(mix.means, mix.covs))
