"""Variance-preserving noise schedules, and the one formula from a denoiser to a score.

Noising is ``x_t = alpha(t) x + sigma(t) eps`` with ``t`` in ``[0, 1]`` and ``alpha^2 + sigma^2 = 1``
(variance preserving, so the prior at ``t = 1`` is ``N(0, I)``). Two schedules:

- :class:`CosineVP` (the default): ``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)`` (the cosine
  schedule of Nichol & Dhariwal 2021 without their offset ``s``; the "trigflow" of sCM);
- :class:`LinearVP`: DDPM's linear betas as a continuous VP SDE (Song et al. 2021, eq. 11 / 29):
  ``beta(t) = beta_min + t (beta_max - beta_min)`` with ``beta_min = 0.1``, ``beta_max = 20``, so
  ``log alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2``.

``log_snr(t) = log(alpha / sigma)`` (score.md §0's ``lambda_t``; half of ``log(alpha^2 / sigma^2)``).
``alpha`` and ``sigma`` are exact on all of ``[0, 1]``; where a formula divides by one of them
(``log_snr``, :func:`score_from_denoiser`, the samplers) the times stay in ``[t_min, t_max]``
(by default ``[1e-3, 1 - 1e-3]``): :meth:`VPSchedule.log_snr` clamps ``t`` to it, and
:meth:`VPSchedule.timesteps` never leaves it.
"""

from __future__ import annotations

import math

import torch

from ...core.errors import ConfigError


def as_time(t, like: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` (a float, a 0-d or ``[B]`` tensor) as a floating tensor (of ``like``'s dtype and device if given)."""
    if like is not None:
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    t = torch.as_tensor(t)
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def per_sample(coef: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    """``coef`` (a scalar, or one value per sample ``[B]``) shaped to broadcast against ``x`` ``[B, ...]``."""
    if not isinstance(coef, torch.Tensor) or coef.dim() == 0:
        return coef
    return coef.reshape(-1, *([1] * (x.dim() - 1)))


def score_from_denoiser(x_t: torch.Tensor, x0_hat: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """The score of ``p_t`` from an x0-prediction: ``s = -(x_t - alpha x0_hat) / sigma^2`` (Tweedie's formula
    ``E[x | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha`` solved for the score).

    ``alpha`` and ``sigma`` are scalars or ``[B]`` tensors (one per sample); ``sigma`` must be > 0.
    """
    alpha, sigma = per_sample(alpha, x_t), per_sample(sigma, x_t)
    return -(x_t - alpha * x0_hat) / sigma**2


def eps_from_denoiser(x_t: torch.Tensor, x0_hat: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """The noise prediction that goes with an x0-prediction: ``eps_hat = (x_t - alpha x0_hat) / sigma``."""
    alpha, sigma = per_sample(alpha, x_t), per_sample(sigma, x_t)
    return (x_t - alpha * x0_hat) / sigma


class VPSchedule:
    """A variance-preserving schedule: ``alpha(t)``, ``sigma(t)`` and their time derivatives (tensors in,
    tensors out, broadcasting), ``log_snr(t)`` and :meth:`timesteps` for an ``n``-step sampler.

    Args:
        t_min, t_max: the end times samplers use, ``0 <= t_min < t_max <= 1`` (``sigma(t_min) > 0`` keeps
            the score finite; ``alpha(t_max) > 0`` keeps the x0-prediction informative).
    """

    name = "vp"

    def __init__(self, t_min: float = 1e-3, t_max: float = 1 - 1e-3):
        if not 0 <= t_min < t_max <= 1:
            raise ConfigError(f"the schedule's times must satisfy 0 <= t_min < t_max <= 1, got t_min={t_min}, t_max={t_max}")
        self.t_min, self.t_max = float(t_min), float(t_max)

    def alpha(self, t) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t) -> torch.Tensor:
        raise NotImplementedError

    def d_alpha(self, t) -> torch.Tensor:
        """``d alpha / dt``."""
        raise NotImplementedError

    def d_sigma(self, t) -> torch.Tensor:
        """``d sigma / dt``."""
        raise NotImplementedError

    def clamp(self, t) -> torch.Tensor:
        """``t`` clamped to ``[t_min, t_max]``."""
        return as_time(t).clamp(self.t_min, self.t_max)

    def log_snr(self, t) -> torch.Tensor:
        """``lambda_t = log(alpha_t / sigma_t)``, with ``t`` clamped to ``[t_min, t_max]``; decreasing in ``t``."""
        t = self.clamp(t)
        return torch.log(self.alpha(t)) - torch.log(self.sigma(t))

    def timesteps(self, n: int, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
        """The ``n + 1`` times of an ``n``-step sampler, decreasing from ``t_max`` to ``t_min``, uniform in ``t``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"a sampler needs at least 1 step, got steps={n!r}; pass an integer >= 1")
        return torch.linspace(self.t_max, self.t_min, n + 1, dtype=dtype or torch.get_default_dtype(), device=device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t_min={self.t_min:g}, t_max={self.t_max:g})"


class CosineVP(VPSchedule):
    """``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)`` (variance preserving; ``log_snr = -log tan(pi t / 2)``)."""

    name = "cosine"

    def alpha(self, t) -> torch.Tensor:
        return torch.cos(0.5 * math.pi * as_time(t))

    def sigma(self, t) -> torch.Tensor:
        return torch.sin(0.5 * math.pi * as_time(t))

    def d_alpha(self, t) -> torch.Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * as_time(t))

    def d_sigma(self, t) -> torch.Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * as_time(t))


class LinearVP(VPSchedule):
    """DDPM's linear betas in continuous time (the VP SDE of Song et al. 2021):
    ``alpha(t) = exp(-t^2 (beta_max - beta_min) / 4 - t beta_min / 2)``, ``sigma = sqrt(1 - alpha^2)``.

    Defaults ``beta_min = 0.1``, ``beta_max = 20`` and ``t`` in ``[1e-3, 1]`` (``alpha(1) = 0.0066``).
    """

    name = "linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3, t_max: float = 1.0):
        if not 0 <= beta_min < beta_max:
            raise ConfigError(f"LinearVP needs 0 <= beta_min < beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        super().__init__(t_min, t_max)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, t) -> torch.Tensor:
        return self.beta_min + as_time(t) * (self.beta_max - self.beta_min)

    def log_alpha(self, t) -> torch.Tensor:
        t = as_time(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t) -> torch.Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(2 * self.log_alpha(t)))  # sqrt(1 - alpha^2), exact near t = 0

    def d_alpha(self, t) -> torch.Tensor:
        return -0.5 * self.beta(t) * self.alpha(t)

    def d_sigma(self, t) -> torch.Tensor:
        alpha = self.alpha(t)
        return 0.5 * self.beta(t) * alpha**2 / self.sigma(t)  # d sqrt(1 - alpha^2) / dt; infinite at t = 0

    def log_snr(self, t) -> torch.Tensor:
        t = self.clamp(t)
        log_alpha = self.log_alpha(t)
        return log_alpha - 0.5 * torch.log(-torch.expm1(2 * log_alpha))

    def __repr__(self) -> str:
        return f"LinearVP(beta_min={self.beta_min:g}, beta_max={self.beta_max:g}, t_min={self.t_min:g}, t_max={self.t_max:g})"


SCHEDULES: dict[str, type[VPSchedule]] = {"cosine": CosineVP, "linear": LinearVP}


#: Times at which :func:`check_schedule` checks a schedule object.
CHECK_POINTS = 65


def check_schedule(schedule: VPSchedule) -> VPSchedule:
    """``schedule`` itself, or a :class:`ConfigError` naming what is wrong with it: the noise level ``sigma(t)``
    must be finite, in ``[0, 1]`` and strictly increasing on ``[t_min, t_max]`` (``alpha(t)`` strictly
    decreasing) and ``alpha² + sigma² = 1`` (variance preserving), checked at :data:`CHECK_POINTS` times."""
    t = torch.linspace(schedule.t_min, schedule.t_max, CHECK_POINTS, dtype=torch.float64)
    alpha, sigma = torch.as_tensor(schedule.alpha(t)), torch.as_tensor(schedule.sigma(t))
    name = repr(schedule)
    if not (torch.isfinite(alpha).all() and torch.isfinite(sigma).all()):
        raise ConfigError(f"the noise schedule {name} gives non-finite alpha or sigma on [t_min, t_max]")
    if not (sigma.diff() > 0).all() or not (alpha.diff() < 0).all():
        bad = int(torch.nonzero(~((sigma.diff() > 0) & (alpha.diff() < 0)))[0])
        raise ConfigError(
            f"the noise schedule {name} is not increasing: sigma(t) must rise and alpha(t) fall with t on [t_min, t_max], "
            f"but from t={t[bad].item():.4g} to t={t[bad + 1].item():.4g} sigma goes {sigma[bad].item():.4g} -> "
            f"{sigma[bad + 1].item():.4g} and alpha {alpha[bad].item():.4g} -> {alpha[bad + 1].item():.4g}"
        )
    worst = (alpha**2 + sigma**2 - 1).abs().max().item()
    if worst > 1e-4:
        raise ConfigError(
            f"the noise schedule {name} is not variance preserving: alpha² + sigma² differs from 1 by up to {worst:.3g}"
        )
    return schedule


def make_schedule(schedule: str | VPSchedule = "cosine") -> VPSchedule:
    """A schedule object from its name (``"cosine"``, ``"linear"``) or the object itself, checked by
    :func:`check_schedule`."""
    if isinstance(schedule, VPSchedule):
        return check_schedule(schedule)
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown noise schedule {schedule!r}; use one of {sorted(SCHEDULES)} or a VPSchedule object")
    return SCHEDULES[schedule]()
