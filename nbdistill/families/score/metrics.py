"""Distances between a set of samples and the data, for 2-D toy sets (and any ``[n, d]`` points).

Pure torch functions, computed in float64 on the inputs' device, deterministic given a
``torch.Generator`` (or a fixed seed when none is given). Pairwise sums are taken in row chunks so
that no ``n × m`` matrix is held whole: 5 000 × 5 000 points stay near :data:`CHUNK_BYTES` per
temporary instead of 200 MB.

- :func:`energy_distance`: the E-statistic 2E|X−Y| − E|X−X'| − E|Y−Y'| (Székely & Rizzo);
- :func:`sliced_wasserstein`: W1 (default) or W2 averaged over random 1-D projections, exact for
  unequal sample sizes (quantile functions merged on their breakpoints);
- :func:`mmd`: squared MMD with an RBF kernel, median-heuristic bandwidth, biased or unbiased;
- :func:`mode_coverage`, :func:`mode_precision` and :func:`mean_log_likelihood`: against a known
  density (the exact Gaussian mixture: ``log_prob``, ``component_of``, ``means`` and ``covs``);
- :func:`sample_metrics`: all that apply, under the stable names of :data:`METRICS`, which the
  family logs as ``<stage>/<name>`` scalars (``val/energy_distance``, ...).

Points are ``[n, d]`` (``[n]`` is read as ``n`` 1-D points; ``[n, *shape]``, e.g. images, is
flattened to ``[n, prod(shape)]``). Bad input (empty sets, NaN or inf, different dimensions) is a
:class:`~nbdistill.core.errors.ConfigError` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ...core.errors import ConfigError
from .metrics_inputs import DEFAULT_SEED, _generator, _pair, as_points  # noqa: F401  (DEFAULT_SEED: part of the API)

#: Bytes one chunk of a pairwise matrix may take (a few such temporaries live at once).
CHUNK_BYTES = 32 * 2**20
#: Random directions :func:`sliced_wasserstein` averages over by default.
PROJECTIONS = 128
#: Most pooled points the median heuristic of :func:`mmd` looks at (a subset drawn with the generator).
MEDIAN_POINTS = 1000
#: The names :func:`sample_metrics` returns (the ones that apply), in this order.
METRICS = ("energy_distance", "sliced_wasserstein", "mmd", "mode_coverage", "mode_precision", "log_likelihood")
#: Standard deviations (Mahalanobis) within which a sample counts toward its mode.
WITHIN = 3.0


def _pairwise_sum(x: torch.Tensor, y: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Σ_ij fn(‖x_i − y_j‖) over all pairs, ``x`` in row chunks of at most :data:`CHUNK_BYTES`.

    Distances are differences, not the ``|a|² + |b|² − 2ab`` expansion, so ``‖x_i − x_i‖`` is exactly 0.
    """
    rows = max(1, CHUNK_BYTES // (8 * len(y)))
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, len(x), rows):
        d = torch.cdist(x[start : start + rows], y, compute_mode="donot_use_mm_for_euclid_dist")
        total = total + fn(d).sum()
    return total


# -- distances ------------------------------------------------------------------------------------
def energy_distance(x: Any, y: Any, unbiased: bool = False) -> float:
    """The E-statistic (squared energy distance) between the samples ``x`` and ``y``.

    ``D² = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖`` (Székely & Rizzo, "Energy statistics: a class of
    statistics based on distances", J. Stat. Plan. Inference 2013, eq. 2.1), with the expectations
    replaced by sample means. By default the **V-statistic**: the within-set means run over all
    ``n²`` pairs, the zero diagonal included; it is the exact D² between the two empirical
    distributions, hence ≥ 0, symmetric and 0 for identical sets. In 1-D it equals the square of
    ``scipy.stats.energy_distance`` (which returns D, not D²). ``unbiased=True`` gives the
    U-statistic (within-set means over the ``n(n − 1)`` pairs ``i ≠ j``; needs two points per
    set), unbiased for D² but possibly slightly negative.
    """
    x, y = _pair(x, y)
    n, m = len(x), len(y)
    if unbiased and min(n, m) < 2:
        raise ConfigError(f"the unbiased energy distance needs at least 2 points per set, got {n} and {m}")
    xy = _pairwise_sum(x, y, lambda d: d) / (n * m)
    xx = _pairwise_sum(x, x, lambda d: d) / (n * (n - 1) if unbiased else n * n)
    yy = _pairwise_sum(y, y, lambda d: d) / (m * (m - 1) if unbiased else m * m)
    return float(2 * xy - xx - yy)


def random_directions(dim: int, projections: int = PROJECTIONS, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[projections, dim]`` unit vectors uniform on the sphere (normalised standard normals), float64 on the CPU."""
    if not isinstance(projections, int) or isinstance(projections, bool) or projections < 1:
        raise ConfigError(f"projections must be a positive integer, got {projections!r}")
    g = torch.randn(projections, dim, generator=_generator(generator), dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True).clamp_min(1e-300)


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor, p: int = 1) -> torch.Tensor:
    """``W_p^p`` between the empirical distributions of each row of ``u`` ``[k, n]`` and ``v`` ``[k, m]``.

    ``W_p^p = ∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt`` (the quantile form of the 1-D optimal transport cost).
    The quantile functions of ``n`` and ``m`` points are step functions, so the integral is the
    exact sum over the merged breakpoints ``{i/n} ∪ {j/m}``: no interpolation, any ``n`` and ``m``.
    For ``n = m`` this is ``mean |sort(u) − sort(v)|^p``.
    """
    u, v = u.sort(dim=1).values, v.sort(dim=1).values
    n, m = u.shape[1], v.shape[1]
    if n == m:
        return (u - v).abs().pow(p).mean(dim=1)
    steps = {"dtype": torch.float64, "device": u.device}
    cuts = torch.cat([torch.arange(1, n + 1, **steps) / n, torch.arange(1, m + 1, **steps) / m]).sort().values
    widths = torch.diff(cuts, prepend=cuts.new_zeros(1))
    middle = cuts - widths / 2  # inside each piece (zero-width pieces weigh nothing)
    iu = (middle * n).floor().long().clamp(0, n - 1)
    iv = (middle * m).floor().long().clamp(0, m - 1)
    return ((u[:, iu] - v[:, iv]).abs().pow(p) * widths).sum(dim=1)


def sliced_wasserstein(
    x: Any,
    y: Any,
    projections: int = PROJECTIONS,
    generator: torch.Generator | None = None,
    p: int = 1,
    directions: torch.Tensor | None = None,
) -> float:
    """Sliced Wasserstein distance: the 1-D ``W_p`` of the projections, averaged over directions.

    ``SW_p(X, Y) = ( mean_θ W_p^p(θᵀX, θᵀY) )^{1/p}`` over ``projections`` directions θ uniform on
    the sphere (Rabin, Peyré, Delon & Bernot, "Wasserstein barycenter and its application to
    texture mixing", SSVM 2011; Bonneel et al. 2015). Default ``p = 1`` (**SW1**, in the data's
    units; each slice equals ``scipy.stats.wasserstein_distance`` of the projections); ``p = 2``
    gives SW2. Each 1-D distance is exact for unequal sample sizes (:func:`wasserstein_1d`).
    The directions come from ``generator`` (a fixed seed when ``None``) unless ``directions``
    ``[k, d]`` are given. Symmetric and 0 for identical sets.
    """
    x, y = _pair(x, y)
    if p not in (1, 2):
        raise ConfigError(f"sliced_wasserstein's p is 1 (SW1) or 2 (SW2), got {p!r}")
    if directions is None:
        directions = random_directions(x.shape[1], projections, generator)
    directions = torch.as_tensor(directions, dtype=torch.float64).to(x.device)
    if directions.dim() != 2 or directions.shape[1] != x.shape[1]:
        raise ConfigError(f"directions must be [k, {x.shape[1]}] for {x.shape[1]}-D points, got shape {tuple(directions.shape)}")
    cost = wasserstein_1d((x @ directions.T).T, (y @ directions.T).T, p)
    return float(cost.mean().pow(1 / p))


def median_bandwidth(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """The median heuristic: the median distance ``‖z_i − z_j‖`` (``i < j``) over the pooled points ``z``.

    (Gretton et al., "A kernel two-sample test", JMLR 2012, §8.) Looks at a random subset of at most
    :data:`MEDIAN_POINTS` pooled points (drawn with ``generator``). Falls back to the mean nonzero
    distance, then to 1, when more than half the pairs coincide.
    """
    z = torch.cat([x, y])
    if len(z) > MEDIAN_POINTS:
        z = z[torch.randperm(len(z), generator=_generator(generator))[:MEDIAN_POINTS].to(z.device)]
    i, j = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    d = (z[i] - z[j]).norm(dim=1)
    if len(d) == 0:
        return 1.0
    h = float(torch.quantile(d, 0.5))
    if h > 0:
        return h
    nonzero = d[d > 0]
    return float(nonzero.mean()) if len(nonzero) else 1.0


def mmd(
    x: Any, y: Any, bandwidth: float | None = None, unbiased: bool = False, generator: torch.Generator | None = None
) -> float:
    """Squared maximum mean discrepancy with the RBF kernel ``k(a, b) = exp(−‖a − b‖² / (2h²))``.

    (Gretton et al., "A kernel two-sample test", JMLR 2012, eqs. 3 and 5.) ``h = bandwidth``, or the
    median heuristic (:func:`median_bandwidth`) when ``None``.

    - biased (default, the V-statistic, eq. 5): ``MMD_b² = mean K_xx + mean K_yy − 2 mean K_xy``, all
      pairs; ≥ 0 and exactly 0 for identical sets;
    - ``unbiased=True`` (the U-statistic, eq. 3): the within-set means over ``i ≠ j``; its mean over
      two independent draws of one distribution is 0 (single values can be negative).
    """
    x, y = _pair(x, y)
    n, m = len(x), len(y)
    if unbiased and min(n, m) < 2:
        raise ConfigError(f"the unbiased MMD needs at least 2 points per set, got {n} and {m}")
    if bandwidth is None:
        h = median_bandwidth(x, y, generator)
    elif isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool) and math.isfinite(bandwidth) and bandwidth > 0:
        h = float(bandwidth)
    else:
        raise ConfigError(f"mmd's bandwidth must be a positive finite number or None (median heuristic), got {bandwidth!r}")

    def kernel(d: torch.Tensor) -> torch.Tensor:  # in place: d is a fresh chunk of distances
        return d.square_().mul_(-1 / (2 * h * h)).exp_()

    xy = _pairwise_sum(x, y, kernel) / (n * m)
    if unbiased:  # the diagonal is exp(0) = 1 exactly: distances are differences
        xx = (_pairwise_sum(x, x, kernel) - n) / (n * (n - 1))
        yy = (_pairwise_sum(y, y, kernel) - m) / (m * (m - 1))
    else:
        xx = _pairwise_sum(x, x, kernel) / (n * n)
        yy = _pairwise_sum(y, y, kernel) / (m * m)
    return float(xx + yy - 2 * xy)


# -- against a known density ----------------------------------------------------------------------
def n_components(density: Any) -> int:
    """How many components ``density`` has: its ``num_components`` (:class:`~.exact.GaussianMixture`) or
    ``n_components`` (sklearn's name), else the length of its ``weights`` or ``means``."""
    count = getattr(density, "num_components", None)
    if count is None:
        count = getattr(density, "n_components", None)
    if count is None:
        for attr in ("weights", "means"):
            value = getattr(density, attr, None)
            if value is not None:
                count = len(value)
                break
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(
            f"mode_coverage needs a mixture that says how many components it has (num_components, weights or means); "
            f"{type(density).__name__} has none"
        )
    return count


def _components(x: torch.Tensor, density: Any, k: int, what: str) -> torch.Tensor:
    """``density.component_of(x)`` as CPU int64 ``[n]``, checked to be one index in ``[0, k)`` per sample."""
    if not callable(getattr(density, "component_of", None)):
        raise ConfigError(f"{what} needs a mixture with component_of(x); {type(density).__name__} has none")
    labels = torch.as_tensor(density.component_of(_like_density(x, density))).reshape(-1).long().cpu()
    if len(labels) != len(x) or (len(labels) and (labels.min() < 0 or labels.max() >= k)):
        raise ConfigError(
            f"{type(density).__name__}.component_of must give one component index in [0, {k}) per sample; "
            f"got {len(labels)} values for {len(x)} samples"
        )
    return labels


def near_mode(x: torch.Tensor, density: Any, labels: torch.Tensor, within: float, what: str = "mode_coverage") -> torch.Tensor:
    """Whether each sample lies within Mahalanobis distance ``within`` of its component's mean:
    ``‖L_k⁻¹ (x − m_k)‖ ≤ within`` with ``S_k = L_k L_kᵀ`` (the mixture's ``means`` and ``chol`` or ``covs``)."""
    means, chol = getattr(density, "means", None), getattr(density, "chol", None)
    if chol is None and getattr(density, "covs", None) is not None:
        chol = torch.linalg.cholesky(torch.as_tensor(density.covs, dtype=torch.float64))
    if means is None or chol is None:
        raise ConfigError(
            f"{what} with within={within} needs the mixture's means and covariances (means and covs or chol); "
            f"{type(density).__name__} lacks them: pass within=None to count every sample"
        )
    means = torch.as_tensor(means, dtype=torch.float64).cpu()[labels]
    chol = torch.as_tensor(chol, dtype=torch.float64).cpu()[labels]
    if means.shape[1:] != x.shape[1:]:
        raise ConfigError(f"{what}: the mixture is {means.shape[1]}-D but the samples are {x.shape[1]}-D")
    z = torch.linalg.solve_triangular(chol, (x.cpu() - means)[:, :, None], upper=False)[:, :, 0]
    return z.norm(dim=1) <= within


def _within(within: float | None) -> float | None:
    if within is not None and not (isinstance(within, (int, float)) and not isinstance(within, bool) and within > 0):
        raise ConfigError(f"within must be a positive number of standard deviations or None, got {within!r}")
    return within


def mode_coverage(samples: Any, density: Any, min_count: int | None = None, within: float | None = WITHIN) -> float:
    """Share of the mixture's components that hold at least ``min_count`` samples (0 to 1).

    Each sample goes to ``density.component_of(samples)`` (the mixture's most responsible
    component) and counts only when it lies within ``within`` standard deviations of that
    component's mean (Mahalanobis, :func:`near_mode`): the "modes captured by high-quality
    samples, within three standard deviations" of the 2-D ring and grid benchmarks (Srivastava et
    al., VEEGAN, NeurIPS 2017). Without it (``within=None``) a blob between the modes, assigned to
    its nearest components, would cover them. ``min_count=None`` asks for 5 % of a fair share,
    ``max(1, ⌈0.05·n/K⌉)`` for ``n`` samples and ``K`` components, so that a few stray samples of a
    collapsed generator do not count as covering a mode. 1 for samples of the mixture itself,
    ``1/K`` for samples of one component.
    """
    if not callable(getattr(density, "component_of", None)):
        raise ConfigError(f"mode_coverage needs a mixture with component_of(x); {type(density).__name__} has none")
    x = as_points(samples, "samples")
    k = n_components(density)
    within = _within(within)
    if min_count is None:
        min_count = max(1, math.ceil(0.05 * len(x) / k))
    if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
        raise ConfigError(
            f"min_count must be a positive integer (samples a component needs to count as covered), got {min_count!r}"
        )
    labels = _components(x, density, k, "mode_coverage")
    if within is not None:
        labels = labels[near_mode(x, density, labels, within)]
    counts = torch.bincount(labels, minlength=k)
    return float((counts >= min_count).sum()) / k


def mode_precision(samples: Any, density: Any, within: float = WITHIN) -> float:
    """Share of the samples within ``within`` standard deviations (Mahalanobis) of their component's
    mean (0 to 1): the "high-quality samples" of VEEGAN's 2-D benchmarks (Srivastava et al. 2017).
    About 0.989 for samples of a 2-D mixture itself at 3σ (``P(χ²₂ ≤ 9) = 1 − e^{−4.5}``)."""
    x = as_points(samples, "samples")
    within = _within(within)
    if within is None:
        raise ConfigError("mode_precision needs within, a positive number of standard deviations")
    labels = _components(x, density, n_components(density), "mode_precision")
    return float(near_mode(x, density, labels, within, "mode_precision").double().mean())


def mean_log_likelihood(samples: Any, density: Any) -> float:
    """``mean_i log p(x_i)`` under the known density (``density.log_prob``), in nats per sample.

    For samples of ``p`` itself this estimates ``−H(p)``, minus the differential entropy; a
    generator that drops modes can still score high (it is a precision, not a recall, measure: read
    it with :func:`mode_coverage`).
    """
    if not callable(getattr(density, "log_prob", None)):
        raise ConfigError(f"mean_log_likelihood needs a density with log_prob(x); {type(density).__name__} has none")
    x = as_points(samples, "samples")
    with torch.no_grad():
        log_p = torch.as_tensor(density.log_prob(_like_density(x, density))).to(torch.float64).reshape(-1)
    if len(log_p) != len(x):
        raise ConfigError(
            f"{type(density).__name__}.log_prob must give one value per sample; got {len(log_p)} for {len(x)} samples"
        )
    return float(log_p.mean())


def _like_density(x: torch.Tensor, density: Any) -> torch.Tensor:
    """``x`` on the device and in the dtype of the density's parameters (its ``means``), when it has them."""
    means = getattr(density, "means", None)
    if isinstance(means, torch.Tensor):
        return x.to(device=means.device, dtype=means.dtype)
    return x


# -- all at once ----------------------------------------------------------------------------------
def sample_metrics(
    samples: Any,
    data: Any,
    density: Any = None,
    generator: torch.Generator | None = None,
    projections: int = PROJECTIONS,
    min_count: int | None = None,
) -> dict[str, float]:
    """Every metric of :data:`METRICS` that applies, as ``{name: float}``, of ``samples`` against ``data``.

    ``energy_distance`` (V-statistic D²), ``sliced_wasserstein`` (SW1, ``projections`` directions),
    ``mmd`` (biased MMD², median-heuristic RBF) always; with a ``density``: ``log_likelihood``
    (:func:`mean_log_likelihood`) when it has ``log_prob``, ``mode_coverage`` when it has
    ``component_of`` (counting samples within 3σ of their mode when it also has ``means`` and
    ``covs``/``chol``, every sample otherwise) and then ``mode_precision`` too. One ``generator`` (a fixed seed when ``None``) draws the projections and the
    median heuristic's subset, so the result is reproducible.
    """
    x, y = _pair(samples, data)
    g = _generator(generator)
    out = {
        "energy_distance": energy_distance(x, y),
        "sliced_wasserstein": sliced_wasserstein(x, y, projections=projections, generator=g),
        "mmd": mmd(x, y, generator=g),
    }
    if density is not None:
        if callable(getattr(density, "component_of", None)):
            has_covs = getattr(density, "means", None) is not None and (
                getattr(density, "chol", None) is not None or getattr(density, "covs", None) is not None
            )
            out["mode_coverage"] = mode_coverage(x, density, min_count, within=WITHIN if has_covs else None)
            if has_covs:
                out["mode_precision"] = mode_precision(x, density)
        if callable(getattr(density, "log_prob", None)):
            out["log_likelihood"] = mean_log_likelihood(x, density)
    return {name: out[name] for name in METRICS if name in out}
