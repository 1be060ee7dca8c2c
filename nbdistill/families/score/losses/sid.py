r"""Score identity Distillation (Zhou, Zheng, Wang, Yin & Huang, "Score identity Distillation: Exponentially
Fast Distillation of Pretrained Diffusion Models for One-Step Generation", ICML 2024, arXiv 2404.04057,
Eq. 9-11 and Alg. 1; ``SID_EDMLoss.generator_loss`` of mingyuanzhou/SiD ``training/sid_loss.py``).

For a generated point ``y = G_θ(z)``, a noisy copy ``y_t = α_t y + σ_t ε`` and the x0-predictions of the
pretrained (real) denoiser ``y_real = μ_real(y_t, t)`` and of the fake-score network trained on the
generator's samples ``y_fake = μ_fake(y_t, t)``, the generator minimises, element-wise,

    L_G = (y_real − y_fake) · ((y_real − y) − α (y_real − y_fake)) / w,
    w   = sg(mean_d |y − y_real|) ≥ 1e-5   (one weight per sample),

SiD's ``L2 − α·L1`` with ``L2 = (y_real − y_fake)·(y_real − y)`` (the score-identity estimate of the Fisher
divergence between the noisy real and fake distributions) and ``L1 = ‖y_real − y_fake‖²``. The
gradient flows into ``y`` through ``y`` itself *and* through both networks' inputs ``y_t`` (only the
networks' weights are held fixed). With ``α = 0`` and the two predictions held fixed, ``∂L_G/∂y =
(y_fake − y_real)/w``: the distribution-matching (DMD) gradient of :func:`.dmd.dmd_gradient`.
"""

from __future__ import annotations

import torch

#: Floor of the per-sample weight ``mean_d |y − y_real|`` (SiD's ``clip(min=0.00001)``).
WEIGHT_FLOOR = 1e-5


def sid_weight(y: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
    """``w = mean_d |y − y_real|`` per sample, shaped ``[B, 1, ...]`` to broadcast, floored at
    :data:`WEIGHT_FLOOR`, without gradients (SiD's ``weight_factor``)."""
    dims = tuple(range(1, y.dim()))
    return (y.detach() - y_real.detach()).abs().mean(dim=dims, keepdim=True).clamp(min=WEIGHT_FLOOR)


def sid_generator_loss(y: torch.Tensor, y_real: torch.Tensor, y_fake: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""SiD's generator loss ``L_G = mean (y_real − y_fake)·((y_real − y) − α (y_real − y_fake)) / w``.

    ``y`` is the generated batch ``[B, ...]``, ``y_real``/``y_fake`` the real and fake denoisers'
    x0-predictions at the same noisy copy of ``y`` (keep their graphs to ``y``); ``alpha`` is SiD's α
    (1.2 in the paper's runs). The element-wise loss is averaged over every element (SiD sums over the
    pixels and averages over the batch: a constant factor). It is zero when ``y_fake = y_real``, and
    oscillates around zero while training (SiD issue #6): the sample metrics, not this value, show progress.
    """
    diff = y_real - y_fake
    return (diff * ((y_real - y) - alpha * diff) / sid_weight(y, y_real)).mean()
