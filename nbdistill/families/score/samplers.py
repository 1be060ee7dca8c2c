"""Probability-flow ODE samplers for a denoiser under a VP schedule: DDIM, Euler and Heun.

With an x0-prediction ``x0_hat = D(x_t, t)`` and ``eps_hat = (x_t - alpha_t x0_hat) / sigma_t`` the
probability-flow ODE of ``x_t = alpha_t x + sigma_t eps`` (Song et al. 2021, eq. 13) reads

    dx/dt = f(t) x - g(t)^2 / 2 * score = alpha'(t) x0_hat + sigma'(t) eps_hat,

with ``f = alpha'/alpha`` and ``g^2 = d sigma^2/dt - 2 f sigma^2`` (substitute :func:`.schedule.score_from_denoiser`).

- :func:`ddim`: deterministic DDIM (Song, Meng & Ermon 2021, eq. 12 with ``eta = 0``): from ``t`` to ``s``,
  ``x_s = alpha_s x0_hat + sigma_s eps_hat``. It is the exact solution of the ODE over the step when
  ``x0_hat`` is constant along it (first order in the step otherwise; exact for a point-mass data set);
  one network evaluation per step.
- :func:`euler`: ``x_s = x_t + (s - t) dx/dt``; one evaluation per step.
- :func:`heun`: Heun's second-order method as in EDM (Karras et al. 2022, Alg. 1): an Euler step, then
  the average of the slopes at both ends; two evaluations per step (one on a final step to ``sigma = 0``).

Each takes the ``n + 1`` decreasing times of :meth:`.schedule.VPSchedule.timesteps` and returns ``x`` at
the last time (``t_min``), or with ``trajectory=True`` the ``[n + 1, B, ...]`` states at every time.
Extra keyword arguments go to the denoiser (``y=labels`` for a class-conditional one). They do not turn
gradients off (a student may backpropagate through its own steps); :func:`sample` does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...core.errors import ConfigError
from .schedule import VPSchedule, check_schedule, per_sample


def check_times(times) -> torch.Tensor:
    """``times`` as a 1-D tensor, or a :class:`ConfigError` unless they are >= 2 finite, strictly decreasing
    values in ``[0, 1]`` (a sampler runs from noise, ``t`` near 1, to data, ``t`` near 0)."""
    times = torch.as_tensor(times)
    if times.dim() != 1 or len(times) < 2:
        raise ConfigError(
            f"a sampler needs a 1-D sequence of at least 2 times (n steps = n + 1 times), got shape {tuple(times.shape)}"
        )
    if not times.is_floating_point():
        times = times.to(torch.get_default_dtype())
    if not torch.isfinite(times).all() or times.min() < 0 or times.max() > 1:
        raise ConfigError(f"a sampler's times must lie in [0, 1], got {times.tolist()}")
    if not (times.diff() < 0).all():
        raise ConfigError(
            f"a sampler's times must strictly decrease (from noise at t near 1 to data at t near 0), got {times.tolist()}; "
            "use schedule.timesteps(n)"
        )
    return times


def _prepare(x: torch.Tensor, times) -> torch.Tensor:
    return check_times(times).to(dtype=x.dtype if x.is_floating_point() else None, device=x.device)


def _denoise(denoiser: nn.Module, x: torch.Tensor, t: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """``denoiser(x, t)`` with ``t`` given as one time per sample ``[B]``."""
    return denoiser(x, t.expand(x.shape[0]), **kwargs)


def _velocity(denoiser, schedule: VPSchedule, x: torch.Tensor, t: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """``dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat`` of the probability-flow ODE."""
    x0 = _denoise(denoiser, x, t, kwargs)
    eps = (x - schedule.alpha(t) * x0) / schedule.sigma(t)
    return schedule.d_alpha(t) * x0 + schedule.d_sigma(t) * eps


def ddim_step(denoiser, schedule: VPSchedule, x: torch.Tensor, t, s, **kwargs) -> torch.Tensor:
    """One deterministic DDIM step from time ``t`` to ``s``: ``alpha_s x0_hat + sigma_s (x - alpha_t x0_hat) / sigma_t``.

    ``t`` and ``s`` are scalars or ``[B]`` (one per sample: consistency and progressive distillation step
    each sample from its own time)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    s = torch.as_tensor(s, dtype=x.dtype, device=x.device)
    x0 = _denoise(denoiser, x, t, kwargs)
    alpha_t, sigma_t = per_sample(schedule.alpha(t), x), per_sample(schedule.sigma(t), x)
    alpha_s, sigma_s = per_sample(schedule.alpha(s), x), per_sample(schedule.sigma(s), x)
    return alpha_s * x0 + sigma_s * (x - alpha_t * x0) / sigma_t


def ddim(denoiser, schedule: VPSchedule, x: torch.Tensor, times, *, trajectory: bool = False, **kwargs) -> torch.Tensor:
    """Deterministic DDIM along ``times`` from ``x`` (the state at ``times[0]``); one evaluation per step."""
    times = _prepare(x, times)
    states = [x]
    for t, s in zip(times[:-1], times[1:]):
        x = ddim_step(denoiser, schedule, x, t, s, **kwargs)
        states.append(x)
    return torch.stack(states) if trajectory else x


def euler(denoiser, schedule: VPSchedule, x: torch.Tensor, times, *, trajectory: bool = False, **kwargs) -> torch.Tensor:
    """Euler's method on ``dx/dt`` along ``times``; one evaluation per step."""
    times = _prepare(x, times)
    states = [x]
    for t, s in zip(times[:-1], times[1:]):
        x = x + (s - t) * _velocity(denoiser, schedule, x, t, kwargs)
        states.append(x)
    return torch.stack(states) if trajectory else x


def heun(denoiser, schedule: VPSchedule, x: torch.Tensor, times, *, trajectory: bool = False, **kwargs) -> torch.Tensor:
    """Heun's second-order method on ``dx/dt`` (EDM Alg. 1) along ``times``; two evaluations per step, one on a
    last step that ends at ``sigma = 0`` (where the slope is not defined, an Euler step as in EDM)."""
    times = _prepare(x, times)
    states = [x]
    for t, s in zip(times[:-1], times[1:]):
        slope = _velocity(denoiser, schedule, x, t, kwargs)
        x_euler = x + (s - t) * slope
        if schedule.sigma(s) > 0:
            x = x + (s - t) * 0.5 * (slope + _velocity(denoiser, schedule, x_euler, s, kwargs))
        else:
            x = x_euler
        states.append(x)
    return torch.stack(states) if trajectory else x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"ddim": ddim, "euler": euler, "heun": heun}


def evaluations(method: str, steps: int) -> int:
    """Denoiser evaluations of an ``steps``-step sampler (Heun: 2 per step; ``t_min > 0`` so none is saved)."""
    if method not in SAMPLERS:
        raise ConfigError(f"unknown sampler {method!r}; use one of {sorted(SAMPLERS)}")
    return 2 * steps if method == "heun" else steps


@torch.no_grad()
def sample(
    denoiser: nn.Module,
    schedule: VPSchedule,
    n_samples: int,
    steps: int,
    method: str = "ddim",
    generator: torch.Generator | None = None,
    *,
    shape: tuple[int, ...] = (2,),
    dtype: torch.dtype = torch.float32,
    device=None,
    trajectory: bool = False,
    **kwargs,
) -> torch.Tensor:
    """``n_samples`` samples of shape ``shape`` from the prior ``N(0, I)`` at ``t_max`` taken to ``t_min`` by the
    ``steps``-step ODE sampler ``method`` (``"ddim"``, ``"euler"``, ``"heun"``), without gradients. The prior
    noise is drawn on the CPU from ``generator`` (so a seed gives the same samples on any device)."""
    if method not in SAMPLERS:
        raise ConfigError(f"unknown sampler {method!r}; use one of {sorted(SAMPLERS)}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    times = check_schedule(schedule).timesteps(steps, dtype=dtype)
    x = torch.randn(n_samples, *shape, generator=generator, dtype=dtype).to(device)
    return SAMPLERS[method](denoiser, schedule, x, times, trajectory=trajectory, **kwargs)
