"""Training a denoiser teacher by denoising score matching, seeded.

The loss (Ho et al. 2020; Salimans & Ho 2022 §4 for the weightings), for a schedule's
``x_t = α(t)·x + σ(t)·ε`` with ``t ~ U[t_min, t_max]``, ``ε ~ N(0, I)``, x from the data::

    L = E_{x, t, ε} [ w(t) · mean_d (D(x_t, t) − x)² ]

with the weighting ``w`` (``weighting``):

- ``"snr+1"`` (default): ``w = SNR(t) + 1 = (α² + σ²)/σ²``. Why: for a denoiser that writes
  ``D = α·x_t − σ·F`` (the v-parametrisation of :class:`nbdistill.models.MLPDenoiser`) under a
  variance-preserving schedule, ``D − x = −σ·(F − v)``, so this weighted x0 error is exactly the
  plain v-prediction MSE ``‖F − v‖²``: of order one at every t, with no weight that blows up in the
  network's own units, and it keeps the low-noise end (where thin structures such as the moons'
  arcs are decided) in the loss, which a plain x0 MSE nearly ignores (its error there is σ²-small).
- ``"truncated-snr"``: ``w = max(SNR(t), 1)`` (Salimans & Ho's other choice: x0 MSE at high noise,
  ε-MSE at low noise).
- ``"x0"``: ``w = 1``, the plain x0 MSE (Karras et al.'s D-loss without preconditioning weights).

The minimiser of every weighting is the same, the posterior mean ``E[x | x_t]`` (Tweedie's
formula): the weighting only decides which noise levels the finite network fits best.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ...core.errors import ConfigError

WEIGHTINGS = ("snr+1", "truncated-snr", "x0")
#: the time range when the schedule does not give ``t_min``/``t_max`` (the brief's cosine clamp)
DEFAULT_T_RANGE = (1e-3, 1.0 - 1e-3)


def loss_weight(schedule, t: torch.Tensor, weighting: str = "snr+1") -> torch.Tensor:
    """``w(t)`` of the module docstring, for t of shape [B]."""
    if weighting == "x0":
        return torch.ones_like(t)
    alpha2, sigma2 = schedule.alpha(t) ** 2, schedule.sigma(t) ** 2
    snr = alpha2 / sigma2
    if weighting == "snr+1":
        return snr + 1.0
    if weighting == "truncated-snr":
        return snr.clamp(min=1.0)
    raise ConfigError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")


def denoising_loss(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule, weighting: str = "snr+1"
) -> torch.Tensor:
    """``mean_b w(t_b) · mean_d (D(α x + σ ε, t) − x)²`` for one batch (x, t, ε)."""
    view = (-1,) + (1,) * (x.ndim - 1)
    x_t = schedule.alpha(t).reshape(view) * x + schedule.sigma(t).reshape(view) * eps
    err = (model(x_t, t) - x).pow(2).reshape(x.shape[0], -1).mean(1)
    return (loss_weight(schedule, t, weighting) * err).mean()


def _t_range(schedule, t_range) -> tuple[float, float]:
    if t_range is None:
        t_range = (getattr(schedule, "t_min", DEFAULT_T_RANGE[0]), getattr(schedule, "t_max", DEFAULT_T_RANGE[1]))
    t_min, t_max = float(t_range[0]), float(t_range[1])
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ConfigError(f"t_range must satisfy 0 <= t_min < t_max <= 1, got ({t_min}, {t_max})")
    if t_min == 0.0:
        raise ConfigError(
            "t_min = 0 divides by σ(0) = 0 in the SNR weighting and trains on clean data; use t_min > 0 (e.g. 1e-3)"
        )
    return t_min, t_max


def _check(model: nn.Module, x_data: torch.Tensor, steps: int, batch_size: int, lr: float, weighting: str) -> None:
    if not isinstance(x_data, torch.Tensor) or x_data.ndim < 2 or len(x_data) < 1:
        raise ConfigError("x_data must be a tensor of shape [N, ...] with N >= 1 samples (e.g. [N, 2] points)")
    if not x_data.is_floating_point():
        raise ConfigError(f"x_data must be a floating-point tensor, got {x_data.dtype}: convert it with x_data.float()")
    if int(steps) != steps or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    x = x_data[:2]
    with torch.no_grad():
        out = model(x, torch.full((len(x),), 0.5, dtype=x.dtype))
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"the denoiser must return an x0-prediction of the input's shape {tuple(x.shape)}, got {got}: "
            "forward(x_t, t) should return a tensor shaped like x_t"
        )


def train_denoiser(
    model: nn.Module,
    x_data: torch.Tensor,
    schedule,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    *,
    weighting: str = "snr+1",
    t_range: tuple[float, float] | None = None,
    ema_decay: float | None = None,
    cosine_lr: bool = True,
) -> list[float]:
    """Fit the x0-predictor ``model`` to ``x_data`` [N, ...] by the denoising loss; returns the loss per step.

    Each of the ``steps`` Adam steps draws, from ``generator`` only, a batch of ``batch_size`` data
    rows (with replacement), ``t ~ U[t_min, t_max]`` (``t_range``, default the schedule's
    ``t_min``/``t_max`` attributes, else ``(1e-3, 1 − 1e-3)``) and ε ~ N(0, I). So the same initial
    weights and the same generator seed give the same weights and loss curve on one machine.
    ``cosine_lr`` decays the learning rate from ``lr`` to 0 along a half cosine (Loshchilov & Hutter
    2017). ``ema_decay`` (e.g. 0.999) keeps an exponential moving average of the weights and loads
    it into ``model`` at the end. The model is left in eval mode.
    """
    _check(model, x_data, steps, batch_size, lr, weighting)
    t_min, t_max = _t_range(schedule, t_range)
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ConfigError(f"ema_decay must be in [0, 1) or None, got {ema_decay}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ema = copy.deepcopy(model).requires_grad_(False) if ema_decay is not None else None
    n, dtype = len(x_data), x_data.dtype
    losses: list[float] = []
    model.train()
    for step in range(int(steps)):
        if cosine_lr:
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * step / steps))
        x = x_data[torch.randint(n, (batch_size,), generator=generator)]
        t = t_min + (t_max - t_min) * torch.rand(batch_size, generator=generator, dtype=dtype)
        eps = torch.randn(x.shape, generator=generator, dtype=dtype)
        loss = denoising_loss(model, x, t, eps, schedule, weighting)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if ema is not None:
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1.0 - ema_decay)
    if ema is not None:
        model.load_state_dict(ema.state_dict())
    model.eval()
    return losses
