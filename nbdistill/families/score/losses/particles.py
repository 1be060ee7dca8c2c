r"""The particle methods' gradients: SDS, VSD and BSD, as pure functions of noise predictions.

A particle ``x`` is noised as ``x_t = α_t x + σ_t ε`` (``t ~ U[t_lo, t_hi]``, ``ε ~ N(0, I)``); a
denoiser's x0-prediction ``D`` gives its noise prediction ``ε̂ = (x_t − α_t D)/σ_t``
(:func:`..schedule.eps_from_denoiser`). Each method specifies ``∂L/∂x`` directly (the U-Net Jacobian
is dropped) and applies it with the surrogate ``½‖x − sg(x − grad)‖²`` (:func:`.dmd.dmd_loss`, the
same trick):

- **SDS** (Poole et al., "DreamFusion: Text-to-3D using 2D Diffusion", 2022, Eq. 3):
  ``grad = w(t) (ε̂_pretrain(x_t, t) − ε)`` with DreamFusion's ``w(t) = σ_t²`` (threestudio's
  "sds" weighting, prolific_dreamer2d's ``1m_alphas_cumprod``), :func:`sds_weight`. In x0-predictions
  ``ε̂ − ε = α_t (x − D(x_t))/σ_t``, so ``E_ε[grad]`` pulls ``x`` towards the denoised point: mode seeking.
- **VSD** (Wang et al., "ProlificDreamer", arXiv 2305.16213, Alg. 1):
  ``grad = w(t) (ε_pretrain(x_t, t) − ε_φ(x_t, t))``, ``ε_φ`` a denoiser trained concurrently on the
  particles by the plain denoising loss; zero wherever ``ε_φ = ε_pretrain`` (particles distributed as
  the data, ``ε_φ`` exact).
- **BSD** (Huang et al., "PlacidDreamer", arXiv 2407.13976; PlacidDreamer ``guidance/sd_utils.py``
  ``train_step_BSD``): the classifier guidance ``c = λ_c (ε_cond − ε_uncond)`` and the denoising
  guidance ``d = ε_uncond`` (no ``−ε`` term), balanced by the min-norm point of the segment
  ``[c, d]`` (two-objective MGDA), ``α = clip(⟨d − c, d⟩/‖d − c‖², 0, 1)`` per sample,
  ``grad = sqrt(ᾱ_t) (α c + (1 − α) d)`` (``sqrt(ᾱ_t) = α_t`` of the VP schedule).
"""

from __future__ import annotations

import torch

from ..schedule import per_sample


def sds_weight(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """DreamFusion's ``w(t) = σ_t²`` (``= 1 − ᾱ_t``), ``[B]``; ``alpha`` is unused and kept for one signature."""
    return sigma**2


def sds_gradient(eps_hat: torch.Tensor, eps: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""SDS: ``w(t) (ε̂(x_t, t) − ε)`` per particle, without gradients; ``weight`` is ``[B]``."""
    return per_sample(weight, eps) * (eps_hat - eps).detach()


def vsd_gradient(eps_pretrain: torch.Tensor, eps_phi: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""VSD: ``w(t) (ε_pretrain(x_t, t) − ε_φ(x_t, t))`` per particle, without gradients (``ε_φ`` is stopped)."""
    return per_sample(weight, eps_pretrain) * (eps_pretrain - eps_phi).detach()


def bsd_alpha(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    r"""BSD's balance ``α = clip(⟨d − c, d⟩ / ‖d − c‖², 0, 1)`` per sample ``[B]``: ``α c + (1 − α) d`` is the
    point of the segment ``[c, d]`` nearest 0. Where ``c = d`` (``‖d − c‖ = 0``) every point of the segment
    is ``c``; ``α = 0`` there (no division by zero)."""
    diff = (d - c).flatten(1)
    num = (diff * d.flatten(1)).sum(1)
    den = diff.pow(2).sum(1)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.zeros_like(num)).clamp(0.0, 1.0)


def bsd_gradient(c: torch.Tensor, d: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""BSD: ``(weight · (α c + (1 − α) d), α)`` with :func:`bsd_alpha`, without gradients; ``weight`` is
    ``[B]`` (``sqrt(ᾱ_t) = α_t`` in the paper's code)."""
    c, d = c.detach(), d.detach()
    alpha = bsd_alpha(c, d)
    a = per_sample(alpha, c)
    return per_sample(weight, c) * (a * c + (1 - a) * d), alpha


def empirical_denoiser(x_t: torch.Tensor, alpha, sigma, points: torch.Tensor) -> torch.Tensor:
    r"""The exact x0-prediction of the empirical distribution of ``points`` ``[N, d]`` (a mixture of Diracs):
    ``E[x | x_t] = Σ_j softmax_j(−‖x_t − α x_j‖² / 2σ²) x_j`` for ``x_t`` ``[B, d]`` (``alpha``/``sigma``
    scalars or ``[B]``). Restricted to the points of one class, it is that class's exact conditional
    denoiser, so ``ε̂_y − ε̂ = −σ ∇ log p(y | x_t)``: the exact noisy classifier of labelled points."""
    a, s = per_sample(alpha, x_t), per_sample(sigma, x_t)
    logits = -(x_t[:, None, :] - a[..., None] * points[None]).pow(2).sum(-1) / (2 * s**2)
    return torch.softmax(logits, dim=1) @ points
