r"""Decoupled DMD (Liu et al., "Decoupled DMD: CFG Augmentation as the Spear, Distribution Matching as the
Shield", arXiv 2511.22677, ICLR 2026, Eq. 6): with classifier-free guidance on the real score,
``s_real^cfg = s_real^uncond + α (s_real^cond − s_real^uncond)``, the DMD direction splits into

    s_real^cfg − s_fake^cond = (s_real^cond − s_fake^cond)  +  (α − 1)(s_real^cond − s_real^uncond)
                               └──────── DM (shield) ──────┘    └────────── CA (spear) ──────────┘

and the generator's gradient is ``∇_θ L = −E[(DM + CA) ∂G_θ/∂θ]``. Every function here is linear in
its inputs, so it holds for scores and for x0-predictions alike: at a common ``(x_τ, τ)`` a score is
``s = (α_τ μ − x_τ)/σ_τ²``, an affine map of the x0-prediction ``μ`` whose offset cancels in every
difference, so ``DM_s = (α_τ/σ_τ²) DM_μ`` and likewise for CA and for the CFG prediction.
"""

from __future__ import annotations

import torch


def cfg(cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance ``uncond + α (cond − uncond)`` (Ho & Salimans 2022), ``α = guidance``."""
    return uncond + guidance * (cond - uncond)


def ca_term(real_cond: torch.Tensor, real_uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """The CFG-augmentation (CA, "spear") term ``(α − 1)(s_real^cond − s_real^uncond)``; zero at ``α = 1``."""
    return (guidance - 1.0) * (real_cond - real_uncond)


def dm_term(real_cond: torch.Tensor, fake_cond: torch.Tensor) -> torch.Tensor:
    """The distribution-matching (DM, "shield") term ``s_real^cond − s_fake^cond``: plain DMD's direction."""
    return real_cond - fake_cond


def decoupled_direction(
    real_cond: torch.Tensor,
    real_uncond: torch.Tensor | None,
    fake_cond: torch.Tensor,
    guidance: float,
    ca: bool = True,
    dm: bool = True,
) -> torch.Tensor:
    r"""``dm·DM + ca·CA``, the direction the generator's samples are pushed along (Eq. 6 with each term a switch).

    With both switches on it equals ``cfg(real_cond, real_uncond, α) − fake_cond`` exactly; ``real_uncond`` may be
    ``None`` when ``ca`` is off.
    """
    direction = dm_term(real_cond, fake_cond) if dm else torch.zeros_like(fake_cond)
    if ca:
        direction = direction + ca_term(real_cond, real_uncond, guidance)
    return direction
