r"""Rolling Forcing's formulas (Liu et al., "Rolling Forcing: Autoregressive Long Video Diffusion in Real
Time", arXiv 2509.25161, §3; official code TencentARC/RollingForcing, ``pipeline/rolling_forcing_*.py``).

**The rolling window.** The generator denoises a window of ``W`` frames jointly, their noise levels
rising along it: with the ``W``-step grid ``g_0 = t_max > g_1 > ... > g_{W-1}`` of the schedule
(:meth:`~..schedule.VPSchedule.timesteps`, whose last time ``t_min`` is not used: the last step returns
the x0-prediction itself), window slot ``s`` (0 the oldest frame) is at

    τ_s = g_{W-1-s},   τ_0 < τ_1 < ... < τ_{W-1} = t_max.

One rolling step predicts ``x̂0 = G(window, τ)`` for every slot at once, emits slot 0's ``x̂0`` as a clean
frame, moves every other slot one level down (``τ_s → τ_{s-1}``, see :func:`renoise`) and one slot
to the left, and appends a frame of pure noise at ``τ_{W-1}``: each frame is denoised ``W`` times, one
level per step, and the window shifts by one frame per step (:func:`window_times`). The official code
uses blocks of several frames per level (``num_frame_per_block = 3``); here a block is one frame.

**Re-noising** (the few-step sampler of Self Forcing / DMD generators, the paper's ``add_noise``):
``x_{τ_{s-1}} = α(τ_{s-1}) x̂0 + σ(τ_{s-1}) ε`` with fresh ``ε ~ N(0, I)``. With ``ε`` the prediction's own
noise ``ε̂ = (x_{τ_s} − α(τ_s) x̂0) / σ(τ_s)`` instead, a rolling step is exactly one DDIM step of every
frame from its level to the next (``renoise="ddim"``, deterministic).

**The teacher** is trained like diffusion forcing (Chen et al. 2024): each frame of a clip gets its own
level ``t_i ~ U[t_min, t_max]`` and the loss is the per-frame v-prediction MSE,
``L = mean_{b,i} (SNR(t_i) + 1) · mean_d (D(x_t, t)_i − x_i)²`` (:func:`diffusion_forcing_loss`).

**Distillation** is DMD over the generated clip (:mod:`.dmd`, Yin et al. 2024, as the paper's ``DMD``
model): a clip of the teacher's length is rolled out by the student from noise, the x0-predictions
of non-overlapping windows kept with gradients (:func:`gradient_windows`) are noised to one
``t ~ U[t_min, t_max]`` shared by every frame and pushed by ``dmd_gradient(x, real_x0, fake_x0)``.
"""

from __future__ import annotations

import torch

from ....models.window_denoiser import ABSENT_TIME
from ..teacher_training import loss_weight


def window_levels(schedule, window: int, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """``τ`` ``[W]``: the noise levels of the window's slots, rising strictly from ``g_{W-1}`` (slot 0) to ``t_max``."""
    return schedule.timesteps(window, dtype=dtype, device=device)[:window].flip(0)


def window_times(levels: torch.Tensor, step: int) -> torch.Tensor:
    """The ``[W]`` noise levels of the window at rolling step ``step`` (0 for the first): slot ``s`` holds frame
    ``step − W + 1 + s``, at ``τ_s`` when that frame exists, else absent (:data:`ABSENT_TIME`)."""
    w = len(levels)
    exists = torch.arange(w, device=levels.device) >= w - 1 - step
    return torch.where(exists, levels, torch.full_like(levels, ABSENT_TIME))


def renoise(x0: torch.Tensor, x_t: torch.Tensor, t_from, t_to, schedule, eps: torch.Tensor | None = None) -> torch.Tensor:
    """``α(t_to) x̂0 + σ(t_to) ε``: fresh noise ``eps`` when given, else the prediction's own ``ε̂`` (a DDIM step).

    ``t_from``/``t_to`` broadcast against ``x0`` ``[B, n, d]`` as ``[n]`` (one level per frame) or scalars."""
    t_from = torch.as_tensor(t_from, dtype=x0.dtype, device=x0.device)
    t_to = torch.as_tensor(t_to, dtype=x0.dtype, device=x0.device)
    view = (-1, 1) if t_from.dim() == 1 else ()
    if eps is None:
        eps = (x_t - schedule.alpha(t_from).reshape(view) * x0) / schedule.sigma(t_from).reshape(view)
    view = (-1, 1) if t_to.dim() == 1 else ()
    return schedule.alpha(t_to).reshape(view) * x0 + schedule.sigma(t_to).reshape(view) * eps


def gradient_windows(frames: int, window: int, phase: int) -> list[int]:
    """The rolling steps whose windows keep their gradients: every ``W``-th from ``phase`` (the paper's
    ``exit_flag``). Their windows do not overlap and together cover each of the ``frames`` frames once."""
    return list(range(phase, frames + window - 1, window))


def diffusion_forcing_loss(model, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule) -> torch.Tensor:
    """``mean_{b,i} (SNR(t_i) + 1) · mean_d (D(x_t, t)_i − x_i)²`` with ``x_t = α(t_i) x_i + σ(t_i) ε_i`` per frame;
    ``x`` and ``eps`` ``[B, F, d]``, ``t`` ``[B, F]``."""
    x_t = schedule.alpha(t)[..., None] * x + schedule.sigma(t)[..., None] * eps
    err = (model(x_t, t) - x).pow(2).mean(-1)
    return (loss_weight(schedule, t.reshape(-1)).reshape(t.shape) * err).mean()
