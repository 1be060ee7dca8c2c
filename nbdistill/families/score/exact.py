"""Gaussian mixtures with a closed-form noisy score and optimal denoiser: the *exact teacher*.

For data ``x ~ sum_k pi_k N(m_k, S_k)`` and ``x_t = alpha x + sigma eps`` the noisy marginal is again a
mixture (the convolution of each Gaussian with ``N(0, sigma^2 I)``, score.md §0):

    p_t(x_t) = sum_k pi_k N(x_t; alpha m_k, C_k),   C_k = alpha^2 S_k + sigma^2 I.

With the responsibilities ``r_k(x_t) = pi_k N(x_t; alpha m_k, C_k) / p_t(x_t)`` (computed with logsumexp):

- score: ``grad log p_t(x_t) = -sum_k r_k C_k^{-1} (x_t - alpha m_k)``;
- optimal denoiser (Tweedie): ``E[x | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha``, computed as
  ``sum_k r_k (m_k + alpha S_k C_k^{-1} (x_t - alpha m_k))`` (the per-component Gaussian posterior mean),
  which is the same quantity but stays exact as ``alpha -> 0``.

:class:`ExactDenoiser` wraps a mixture and a schedule as a denoiser ``nn.Module``: the teacher whose
probability-flow ODE is the true one, so a student's error is measured against the truth. All the
mixture's arithmetic is float64 whatever the input dtype; results come back in the input's dtype.

Class-conditional mixtures (for guidance): give each component a class (``classes=[...]``); the
methods then take ``y`` (one class per sample) and use only that class's components, renormalised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ...core.errors import ConfigError
from .schedule import CosineVP, VPSchedule, as_time

F64 = torch.float64


def _tensor(values, what: str) -> torch.Tensor:
    try:
        out = torch.as_tensor(values, dtype=F64).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"the mixture's {what} must be numbers, got {values!r}") from exc
    if not torch.isfinite(out).all():
        raise ConfigError(f"the mixture's {what} hold NaN or infinite values")
    return out


class GaussianMixture:
    """A mixture of ``K`` Gaussians in ``d`` dimensions with its exact noisy score and denoiser.

    Args:
        means: ``[K, d]`` component means.
        covs: ``[K, d, d]`` covariances (or one ``[d, d]`` shared by all), symmetric positive definite.
        weights: ``[K]`` mixture weights, ``>= 0``; ``None`` is uniform. Weights that do not sum to 1
            (``[1, 2, 1]``) are normalised, with a warning.
        stds: instead of ``covs``: one standard deviation for all (a float), one per component ``[K]``
            (isotropic), or one per component and axis ``[K, d]`` (diagonal). With neither ``covs`` nor
            ``stds`` every covariance is the identity.
        classes: ``[K]`` a class index per component, for class-conditional sampling and guidance.
    """

    def __init__(self, means, covs=None, weights=None, *, stds=None, classes: Sequence[int] | None = None):
        means = _tensor(means, "means")
        if means.dim() != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ConfigError(
                f"the mixture's means must be a [K, d] array (one row per component), got shape {tuple(means.shape)}; "
                "for a single component pass [[...]]"
            )
        k, d = means.shape
        if covs is not None and stds is not None:
            raise ConfigError("give the mixture either covs (full covariances) or stds (standard deviations), not both")
        if covs is not None:
            covs = _tensor(covs, "covs")
            if covs.shape == (d, d):
                covs = covs.expand(k, d, d).clone()
            if covs.shape != (k, d, d):
                raise ConfigError(
                    f"the mixture's covs must have shape [K, d, d] = [{k}, {d}, {d}] or [d, d], got {tuple(covs.shape)}"
                )
            if not torch.allclose(covs, covs.mT, rtol=1e-10, atol=1e-12):
                raise ConfigError("the mixture's covs must be symmetric matrices; symmetrise them, e.g. (S + S.T) / 2")
        else:
            stds = _tensor(1.0 if stds is None else stds, "stds")
            if stds.dim() == 0 or stds.shape == (1,):
                stds = stds.reshape(1, 1).expand(k, d)
            elif stds.shape == (k,):
                stds = stds[:, None].expand(k, d)
            if stds.shape != (k, d):
                raise ConfigError(
                    f"the mixture's stds must be a float, [K] = [{k}] or [K, d] = [{k}, {d}], got shape {tuple(stds.shape)}"
                )
            if (stds <= 0).any():
                raise ConfigError(f"the mixture's stds must be > 0, got {stds.min().item():g}")
            covs = torch.diag_embed(stds**2)
        eigen, self.eigvecs = torch.linalg.eigh(covs)
        if (eigen <= 0).any():
            bad = int((eigen <= 0).any(-1).nonzero()[0])
            raise ConfigError(
                f"the mixture's covariance of component {bad} is not positive definite (smallest eigenvalue "
                f"{eigen[bad].min().item():.3g}); add a small multiple of the identity"
            )
        weights = torch.full((k,), 1.0 / k, dtype=F64) if weights is None else _tensor(weights, "weights")
        if weights.shape != (k,):
            raise ConfigError(f"the mixture's weights must have one entry per component ({k}), got shape {tuple(weights.shape)}")
        if (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(f"the mixture's weights must be >= 0 with a positive sum, got {weights.tolist()}")
        total = weights.sum().item()
        if abs(total - 1) > 1e-6:
            warnings.warn(f"the mixture's weights sum to {total:g}, not 1: nbdistill normalised them", UserWarning, stacklevel=2)
        self.weights = weights / weights.sum()
        self.means, self.covs = means, covs
        self.eigvals = eigen
        self.chol = torch.linalg.cholesky(covs)
        self.classes = None
        if classes is not None:
            labels = torch.as_tensor(classes)
            if labels.shape != (k,) or labels.is_floating_point() or (labels < 0).any():
                raise ConfigError(f"classes must give one class index >= 0 per component ({k}), got {list(classes)}")
            self.classes = labels.long()

    # --- presets -------------------------------------------------------------------------------------------

    @classmethod
    def ring(cls, k: int = 8, radius: float = 2.0, std: float = 0.2, classes: int | None = None) -> GaussianMixture:
        """``k`` equal isotropic Gaussians (std ``std``) evenly spaced on a circle of radius ``radius``, the first
        at ``(radius, 0)``. ``classes=c`` gives component ``i`` the class ``i % c`` (a class-conditional ring)."""
        if k < 1 or radius < 0:
            raise ConfigError(f"ring needs k >= 1 components and radius >= 0, got k={k}, radius={radius}")
        angles = 2 * math.pi * torch.arange(k, dtype=F64) / k
        means = radius * torch.stack([angles.cos(), angles.sin()], 1)
        return cls(means, stds=std, classes=None if classes is None else [i % classes for i in range(k)])

    @classmethod
    def grid(cls, k: int = 5, spacing: float = 1.0, std: float = 0.1, classes: int | None = None) -> GaussianMixture:
        """``k x k`` equal isotropic Gaussians (std ``std``) on a square grid with ``spacing`` between neighbours,
        centred at the origin (row-major from the bottom left). ``classes=c``: component ``i`` has class ``i % c``."""
        if k < 1 or spacing <= 0:
            raise ConfigError(f"grid needs k >= 1 and spacing > 0, got k={k}, spacing={spacing}")
        axis = spacing * (torch.arange(k, dtype=F64) - (k - 1) / 2)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        means = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
        return cls(means, stds=std, classes=None if classes is None else [i % classes for i in range(k * k)])

    # --- description ---------------------------------------------------------------------------------------

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else int(self.classes.max()) + 1

    def mean(self) -> torch.Tensor:
        """``E[x] = sum_k pi_k m_k`` (float64)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """``Cov[x] = sum_k pi_k (S_k + m_k m_k^T) - E[x] E[x]^T`` (float64)."""
        second = (self.weights[:, None, None] * (self.covs + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        mu = self.mean()
        return second - torch.outer(mu, mu)

    def __repr__(self) -> str:
        cls = "" if self.classes is None else f", classes={self.num_classes}"
        return f"GaussianMixture(K={self.num_components}, d={self.dim}{cls})"

    # --- sampling and densities ----------------------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None, return_labels: bool = False, y=None):
        """``n`` float64 samples ``[n, d]`` (and their component indices if ``return_labels``), seeded by the CPU
        ``generator``. With ``y`` (a class index, or one per sample) only that class's components are drawn."""
        weights = self.weights.expand(n, -1) if y is not None else self.weights
        if y is not None:
            weights = torch.where(self._class_mask(y, n), weights, torch.zeros((), dtype=F64))
        comps = torch.multinomial(weights, n if y is None else 1, replacement=True, generator=generator).reshape(n)
        eps = torch.randn(n, self.dim, 1, dtype=F64, generator=generator)
        x = self.means[comps] + (self.chol[comps] @ eps).squeeze(-1)
        return (x, comps) if return_labels else x

    def log_prob(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """``log p(x)`` ``[B]`` (``log p(x | y)`` given classes ``y``), float64."""
        return self.noisy_log_prob(x, 1.0, 0.0, y)

    def noisy_log_prob(self, x_t: torch.Tensor, alpha, sigma, y=None) -> torch.Tensor:
        """``log p_t(x_t)`` ``[B]`` of the noisy marginal at ``(alpha, sigma)`` (scalars or ``[B]``), float64."""
        log_joint, _ = self._terms(x_t, alpha, sigma, y)
        out = torch.logsumexp(log_joint, -1)
        if y is not None:  # renormalise by the class's weight: p(x | y)
            log_w = torch.where(self._class_mask(y, len(out)), self.weights.to(out.device).log(), -math.inf)
            out = out - torch.logsumexp(log_w, -1)
        return out

    def noisy(self, alpha: float, sigma: float) -> GaussianMixture:
        """The mixture of ``x_t = alpha x + sigma eps``: components ``N(alpha m_k, alpha^2 S_k + sigma^2 I)``."""
        alpha, sigma = float(alpha), float(sigma)
        covs = alpha**2 * self.covs + sigma**2 * torch.eye(self.dim, dtype=F64)
        return GaussianMixture(alpha * self.means, covs, self.weights, classes=self.classes)

    def responsibilities(self, x_t: torch.Tensor, alpha=1.0, sigma=0.0, y=None) -> torch.Tensor:
        """``r_k(x_t)`` ``[B, K]``: the posterior probability of each component given ``x_t`` (float64)."""
        log_joint, _ = self._terms(x_t, alpha, sigma, y)
        return torch.softmax(log_joint, -1)

    def component_of(self, x: torch.Tensor) -> torch.Tensor:
        """The most responsible component of each clean sample ``[B]`` (int64): mode coverage counts these."""
        return self.responsibilities(x).argmax(-1).to(x.device)

    def score(self, x_t: torch.Tensor, alpha, sigma, y=None) -> torch.Tensor:
        """``grad log p_t(x_t) = -sum_k r_k C_k^{-1} (x_t - alpha m_k)``, in ``x_t``'s dtype (computed in float64)."""
        log_joint, solved = self._terms(x_t, alpha, sigma, y)
        r = torch.softmax(log_joint, -1)
        return -(r[..., None] * solved).sum(-2).to(x_t.dtype)

    def denoise(self, x_t: torch.Tensor, alpha, sigma, y=None) -> torch.Tensor:
        """Tweedie's ``E[x | x_t] = sum_k r_k (m_k + alpha S_k C_k^{-1} (x_t - alpha m_k))``, in ``x_t``'s dtype."""
        log_joint, solved = self._terms(x_t, alpha, sigma, y)
        r = torch.softmax(log_joint, -1)
        device = solved.device
        a = self._coef(alpha, device)[..., None]
        posterior = self.means.to(device) + a * torch.einsum("kij,bkj->bki", self.covs.to(device), solved)
        return (r[..., None] * posterior).sum(-2).to(x_t.dtype)

    # --- the shared core -----------------------------------------------------------------------------------

    def _coef(self, value, device) -> torch.Tensor:
        """``alpha`` or ``sigma`` (a float, a 0-d or ``[B]`` tensor) as float64 ``[B, 1]``, or ``[1, 1]`` when all are equal."""
        value = torch.as_tensor(value, dtype=F64, device=device).reshape(-1, 1)
        return value[:1] if len(value) > 1 and bool((value == value[0]).all()) else value

    def _class_mask(self, y, n: int) -> torch.Tensor:
        if self.classes is None:
            raise ConfigError("this mixture has no classes: build it with classes=[one class per component] to condition on y")
        y = torch.as_tensor(y).reshape(-1).long()
        if y.numel() == 1:
            y = y.expand(n)
        if y.numel() != n:
            raise ConfigError(f"y must give one class per sample ({n}), got {y.numel()}")
        classes = self.classes.to(y.device)
        if not torch.isin(y, classes).all():
            raise ConfigError(f"y holds classes the mixture does not have; its classes are {sorted(set(classes.tolist()))}")
        return y[:, None] == classes[None, :]

    def _terms(self, x_t: torch.Tensor, alpha, sigma, y=None):
        """``(log pi_k N(x_t; alpha m_k, C_k)  [B, K],  C_k^{-1} (x_t - alpha m_k)  [B, K, d])``.

        The covariances' eigen-decompositions are made once, so any ``(alpha, sigma)`` (one per sample too)
        costs elementwise work only."""
        if x_t.dim() != 2 or x_t.shape[1] != self.dim:
            raise ConfigError(
                f"x must have shape [B, {self.dim}] for this {self.dim}-dimensional mixture, got {tuple(x_t.shape)}"
            )
        device = x_t.device
        x = x_t.to(F64)
        a, s = self._coef(alpha, device), self._coef(sigma, device)  # [1 or B, 1]
        vectors = self.eigvecs.to(device)  # S_k = U_k diag(lambda_k) U_k^T, so C_k = U_k diag(alpha^2 lambda_k + sigma^2) U_k^T
        diff = x[:, None, :] - a[..., None] * self.means.to(device)[None]  # [B, K, d]
        variances = a[..., None] ** 2 * self.eigvals.to(device) + s[..., None] ** 2  # [1 or B, K, d]
        if (variances <= 0).any():
            raise ConfigError(
                f"the noisy covariance alpha^2 S + sigma^2 I is singular (alpha={alpha}, sigma={sigma}); use sigma > 0"
            )
        rotated = torch.einsum("kji,bkj->bki", vectors, diff) / variances  # diag(1 / c) U^T diff
        solved = torch.einsum("kij,bkj->bki", vectors, rotated)  # C_k^{-1} (x_t - alpha m_k)
        log_normal = -0.5 * ((diff * solved).sum(-1) + variances.log().sum(-1) + self.dim * math.log(2 * math.pi))
        log_joint = self.weights.to(device).log() + log_normal
        if y is not None:
            log_joint = torch.where(self._class_mask(y, len(x)).to(device), log_joint, -math.inf)
        return log_joint, solved


class ExactDenoiser(nn.Module):
    """The exact teacher: ``forward(x_t, t) = E[x | x_t]`` for a :class:`GaussianMixture` under a schedule.

    No parameters. ``alpha(t)`` and ``sigma(t)`` are evaluated in float64 and the mixture's arithmetic is
    float64; the output has ``x_t``'s dtype and device (so float64 inputs give float64-exact outputs).
    ``t`` is a scalar or ``[B]``; ``y`` (classes, for a class-conditional mixture) is optional.
    """

    def __init__(self, mixture: GaussianMixture, schedule: VPSchedule | None = None):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise ConfigError(f"ExactDenoiser needs a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture
        self.schedule = schedule if schedule is not None else CosineVP()

    def _alpha_sigma(self, t, x_t: torch.Tensor):
        t = as_time(t).to(device=x_t.device, dtype=F64)
        return self.schedule.alpha(t), self.schedule.sigma(t)

    def forward(self, x_t: torch.Tensor, t, y=None) -> torch.Tensor:
        alpha, sigma = self._alpha_sigma(t, x_t)
        return self.mixture.denoise(x_t, alpha, sigma, y)

    def score(self, x_t: torch.Tensor, t, y=None) -> torch.Tensor:
        """The exact ``grad log p_t(x_t)`` at time ``t``."""
        alpha, sigma = self._alpha_sigma(t, x_t)
        return self.mixture.score(x_t, alpha, sigma, y)

    def extra_repr(self) -> str:
        return f"{self.mixture!r}, {self.schedule!r}"
