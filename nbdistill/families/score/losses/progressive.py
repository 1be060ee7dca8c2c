r"""Progressive distillation (Salimans & Ho, "Progressive Distillation for Fast Sampling of Diffusion
Models", ICLR 2022, Alg. 2): two deterministic DDIM steps of the teacher ``z_t -> z_t' -> z_t''``
give the x0-target for which *one* student DDIM step from ``z_t`` lands exactly on ``z_t''``,

    x̃ = (z_t'' − (σ_t''/σ_t)·z_t) / (α_t'' − (σ_t''/σ_t)·α_t),

and the student regresses it with the truncated-SNR weight ``w(λ_t) = max(SNR_t, 1)``,
``SNR_t = α_t²/σ_t²``:  ``L = w(λ_t)·‖x̃ − x̂_η(z_t)‖²``.
"""

from __future__ import annotations

import torch

from ..schedule import per_sample


def progressive_target(z_t: torch.Tensor, z_t2: torch.Tensor, alpha_t, sigma_t, alpha_t2, sigma_t2) -> torch.Tensor:
    r"""Salimans & Ho (2022) Alg. 2's target ``x̃ = (z_t'' − (σ_t''/σ_t) z_t) / (α_t'' − (σ_t''/σ_t) α_t)``.

    ``z_t`` is the noisy input at time ``t``, ``z_t2`` the teacher's state after its two DDIM steps (at
    ``t''``); the coefficients are scalars or one per sample ``[B]``. A DDIM step
    ``z_t'' = α_t'' x̂ + σ_t'' (z_t − α_t x̂)/σ_t`` with ``x̂ = x̃`` reproduces ``z_t2`` exactly.
    """
    ratio = per_sample(sigma_t2 / sigma_t, z_t)
    return (z_t2 - ratio * z_t) / (per_sample(alpha_t2, z_t) - ratio * per_sample(alpha_t, z_t))


def truncated_snr_weight(alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """``w(λ_t) = max(SNR_t, 1)`` with ``SNR_t = α_t²/σ_t²`` (Salimans & Ho 2022, §4, "truncated SNR")."""
    return (alpha_t**2 / sigma_t**2).clamp(min=1.0)


def progressive_loss(student_x0: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""``L = mean_b w_b · mean_d (x̃_b − x̂_b)²`` (Salimans & Ho 2022, Alg. 2); ``target`` is detached.

    Returns ``{"x0_mse": unweighted mean squared error, "loss": the weighted loss}``.
    """
    err = (target.detach() - student_x0).pow(2).reshape(student_x0.shape[0], -1).mean(1)
    return {"x0_mse": err.mean(), "loss": (weight.detach() * err).mean()}
