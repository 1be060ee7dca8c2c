r"""BOOT (Gu, Zhai, Zhang, Liu & Susskind, "BOOT: Data-free Distillation of Denoising Diffusion Models with
Bootstrapping", arXiv 2306.05544, ICML 2024 as "Data-free Distillation of Diffusion Models with Bootstrapping").

The student ``g_θ(ε, t)`` predicts the *signal* ``y_t = (x_t − σ_t ε)/α_t`` of the teacher's deterministic
trajectory started from pure noise ``ε`` (so ``y_0 = x_0``, the sample). With BOOT's sign convention
``λ_t = −log(α_t/σ_t)`` (the negative log-SNR, increasing with noise; nbdistill's
:meth:`~..schedule.VPSchedule.log_snr` is ``−λ_t``), the probability-flow ODE becomes the *Signal-ODE*

    dy_t/dt = −λ'_t · (f_φ(x_t, t) − y_t),     x_t = α_t y_t + σ_t ε,

with ``f_φ`` the teacher's x0-prediction; ε cancels. One DDIM step of the teacher from ``t`` to ``s < t``
written in signal space is its exact solution for a constant ``f`` over the step:

    y_s = f + e^{λ_s − λ_t} · (ŷ_t − f),      f = f_φ(α_t ŷ_t + σ_t ε, t),

(``≈ ŷ_t + (λ_t − λ_s)(f − ŷ_t)`` to first order). The bootstrapping objective regresses the student at
``s`` on this target built from the student itself at ``t`` (stop-gradient), normalised by the step's
squared length in λ, so that it is a finite-difference residual of the Signal-ODE:

    L_BS = ‖g_θ(ε, s) − sg(y_s)‖² / (λ_t − λ_s)²,

and the boundary term ties the noise end to the teacher: ``L_BC = ‖g_θ(ε, T) − f_φ(ε, T)‖²`` (at ``t = T``
``x_T = ε``, and a DDIM step from ``α_T = 0`` gives ``y_s = f_φ(ε, T)`` for any ``s``).

What was verified, and from where (the paper's body could not be read here, only its abstract, summaries and
reviews; no official code was found): the signal ``y_t``, the Signal-ODE above with BOOT's sign of λ, and
a stop-gradient bootstrap target between consecutive times ``s < t`` (the paper's Fig. 3: "the output of a
student model at timestep s [matches] the output of stacking the same student model and a teacher model at an
earlier time t"); a fixed step ``δ`` between the two times, and a boundary condition at ``x_T`` "aligning with
the output of diffusion models when the input is entirely noise" (the ICLR 2024 reviews). Not verified from
the paper: the exact normalisation and the form of the boundary loss. Here they follow a public
re-implementation of the BOOT loss (OFTSR's training script, for rectified flow): a plain squared error at the
boundary, and a normalisation by the squared DDIM coefficient ``(1 − e^{λ_s − λ_t})²``, which equals
``(λ_t − λ_s)²`` to first order in the step; nbdistill divides by ``(λ_t − λ_s)²`` (score.md §13).
"""

from __future__ import annotations

import torch

from ..schedule import per_sample


def signal_from_state(x_t: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """BOOT's signal ``y_t = (x_t − σ_t ε)/α_t`` of a state ``x_t`` on the trajectory of the noise ``ε``."""
    return (x_t - per_sample(sigma, x_t) * eps) / per_sample(alpha, x_t)


def state_from_signal(y_t: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """The state ``x_t = α_t y_t + σ_t ε`` of a signal (the inverse of :func:`signal_from_state`)."""
    return per_sample(alpha, y_t) * y_t + per_sample(sigma, y_t) * eps


def signal_ddim_step(y_t: torch.Tensor, f: torch.Tensor, lam_t, lam_s) -> torch.Tensor:
    r"""One teacher DDIM step in signal space, ``y_s = f + e^{λ_s − λ_t} (y_t − f)`` (BOOT §3.1).

    ``f`` is the teacher's x0-prediction at ``x_t = α_t y_t + σ_t ε``; ``lam_t``, ``lam_s`` are BOOT's
    ``λ = −log(α/σ)`` at ``t`` and ``s`` (scalars or ``[B]``). With ``s = t`` it returns ``y_t``.
    """
    decay = per_sample(torch.exp(torch.as_tensor(lam_s - lam_t)), y_t)
    return f + decay * (y_t - f)


def bootstrap_loss(g_s: torch.Tensor, target: torch.Tensor, lam_t, lam_s) -> torch.Tensor:
    r"""``L_BS = mean_b ‖g_θ(ε_b, s_b) − sg(y_s)_b‖² / (λ_t − λ_s)_b²`` (squared error averaged over a sample's
    coordinates); ``target`` is detached."""
    err = (g_s - target.detach()).pow(2).reshape(g_s.shape[0], -1).mean(1)
    step = torch.as_tensor(lam_t - lam_s, dtype=err.dtype, device=err.device)
    return (err / step.pow(2)).mean()


def boundary_loss(g_T: torch.Tensor, teacher_T: torch.Tensor) -> torch.Tensor:
    """``L_BC = mean ‖g_θ(ε, T) − f_φ(ε, T)‖²``: at the noise end the student's signal is the teacher's
    x0-prediction from pure noise; ``teacher_T`` is detached."""
    return (g_T - teacher_T.detach()).pow(2).reshape(g_T.shape[0], -1).mean(1).mean()
