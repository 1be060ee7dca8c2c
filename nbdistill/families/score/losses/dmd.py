r"""Distribution matching (Yin et al., "One-step Diffusion with Distribution Matching Distillation",
CVPR 2024, Alg. 1 and Eq. 7-8): the gradient of ``KL(p_fake,t ‖ p_real,t)`` with respect to a generated
point ``x = G_θ(z)``, estimated at a noisy copy ``x_t = α_t x + σ_t ε``, points from the fake score to the
real one. In x0-predictions (``s = (α_t μ − x_t)/σ_t²``, so ``s_fake − s_real = α_t (μ_fake − μ_real)/σ_t²``)
and with the paper's per-sample normalisation,

    grad = (μ_fake(x_t, t) − μ_real(x_t, t)) / mean_d |x − μ_real(x_t, t)|,

applied to ``x`` through the surrogate ``L_DM = ½ · mean (x − sg(x − grad))²`` (the paper's
``0.5 * F.mse_loss(x, (x - grad).detach())``), whose gradient is ``grad / numel``.

Every DMD-style method (``dmd``, ``dmd2``, ``decoupled_dmd``, ``phased_dmd``, ``disback``) takes its
generator step from these two functions; the fake score trains by the ordinary denoising loss
(:func:`..teacher_training.denoising_loss`) on ``sg(x)``.
"""

from __future__ import annotations

import torch

#: Floor of the per-sample normalisation ``mean_d |x − μ_real|`` (a generator already on the teacher's
#: denoised point would divide by zero).
NORM_FLOOR = 1e-5


def dmd_gradient(x: torch.Tensor, real_x0: torch.Tensor, fake_x0: torch.Tensor) -> torch.Tensor:
    r"""``(μ_fake − μ_real) / mean_d |x − μ_real|`` per sample (DMD Alg. 1), without gradients.

    ``x`` is the generated batch ``[B, ...]``; ``real_x0``/``fake_x0`` the real (teacher) and fake denoisers'
    x0-predictions at the same noisy copy ``x_t``. The normaliser is floored at :data:`NORM_FLOOR`.
    """
    x, real_x0, fake_x0 = x.detach(), real_x0.detach(), fake_x0.detach()
    dims = tuple(range(1, x.dim()))
    norm = (x - real_x0).abs().mean(dim=dims, keepdim=True).clamp(min=NORM_FLOOR)
    return (fake_x0 - real_x0) / norm


def dmd_loss(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r"""``L_DM = ½ · mean (x − sg(x − grad))²``: a scalar whose gradient with respect to ``x`` is ``grad / x.numel()``."""
    return 0.5 * (x - (x - grad).detach()).pow(2).mean()
