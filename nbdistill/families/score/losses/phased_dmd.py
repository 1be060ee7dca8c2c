r"""Score matching within a subinterval (Fan et al., "Phased DMD: Few-step Distribution Matching
Distillation via Score Matching within Subintervals", arXiv 2510.27684): the fake score of a phase whose
generator outputs *noisy* samples ``x_s`` (at the phase's lower end ``s``), not clean data.

For ``τ > s`` the forward process from ``s`` is Gaussian, ``x_τ = α_{τ|s} x_s + σ_{τ|s} ε`` with

    α_{τ|s} = α_τ / α_s,    σ_{τ|s}² = σ_τ² − α_{τ|s}² σ_s²,

so (denoising score matching on the transition kernel, Vincent 2011) the marginal score is
``∇ log p_τ(x_τ) = E[−(x_τ − α_{τ|s} x_s)/σ_{τ|s}² | x_τ]``. An x0-predicting network ``μ`` has the score
``(α_τ μ − x_τ)/σ_τ²``, so it regresses the per-sample target

    μ̃ = (x_τ − σ_τ² (x_τ − α_{τ|s} x_s) / σ_{τ|s}²) / α_τ,

whose conditional mean ``E[μ̃ | x_τ]`` is the fake process's Tweedie denoiser ``E[x_0 | x_τ]``, x_0 never
seen. The loss ``w · mean_d (μ − μ̃)²`` has the weight ``w = (α_τ² + σ_τ²) σ_{τ|s}² / σ_τ⁴``, the
``SNR + 1`` weighting of :func:`..teacher_training.loss_weight` times ``σ_{τ|s}²/σ_τ²`` (the share of τ's
noise added after ``s``), which keeps the target's variance finite as ``τ → s``. With clean samples
(``α_s = 1, σ_s = 0``) ``μ̃ = x_s`` and ``w = SNR_τ + 1``: the ordinary denoising loss, so one phase is DMD.
"""

from __future__ import annotations

import torch

from ..schedule import per_sample


def transition(alpha_s, sigma_s, alpha_t, sigma_t) -> tuple[torch.Tensor, torch.Tensor]:
    """``(α_{t|s}, σ_{t|s})`` of ``x_t | x_s`` for ``t > s``: ``α_t/α_s`` and ``sqrt(σ_t² − α_{t|s}² σ_s²)`` (floored at 0)."""
    alpha_ts = alpha_t / alpha_s
    return alpha_ts, (sigma_t**2 - alpha_ts**2 * sigma_s**2).clamp(min=0.0).sqrt()


def subinterval_target(x_t: torch.Tensor, x_s: torch.Tensor, alpha_s, sigma_s, alpha_t, sigma_t) -> torch.Tensor:
    r"""``μ̃ = (x_t − σ_t² (x_t − α_{t|s} x_s)/σ_{t|s}²) / α_t``: the x0-target whose conditional mean given ``x_t``
    is ``E[x_0 | x_t]``, from a sample ``x_s`` at the earlier (less noisy) time ``s``. Coefficients are scalars or ``[B]``."""
    alpha_ts, sigma_ts = transition(alpha_s, sigma_s, alpha_t, sigma_t)
    score = -(x_t - per_sample(alpha_ts, x_t) * x_s) / per_sample(sigma_ts**2, x_t)
    return (x_t + per_sample(sigma_t**2, x_t) * score) / per_sample(alpha_t, x_t)


def subinterval_weight(alpha_s, sigma_s, alpha_t, sigma_t) -> torch.Tensor:
    """``w = (α_t² + σ_t²) σ_{t|s}² / σ_t⁴``; ``SNR_t + 1`` for clean samples (``α_s = 1, σ_s = 0``)."""
    _, sigma_ts = transition(alpha_s, sigma_s, alpha_t, sigma_t)
    return (alpha_t**2 + sigma_t**2) * sigma_ts**2 / sigma_t**4


def subinterval_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``mean_b w_b · mean_d (μ_b − μ̃_b)²`` with the target and the weight detached."""
    err = (pred - target.detach()).pow(2).reshape(pred.shape[0], -1).mean(1)
    return (weight.detach() * err).mean()
