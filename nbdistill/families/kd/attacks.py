r"""The L∞ PGD attack (Madry et al., 2018) that MTARD trains and evaluates against (and the zoo's
robust teacher was trained with)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    random_start: str = "uniform",
    lower: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""L∞ projected gradient descent (Madry et al., 2018) on :math:`\mathrm{CE}(\text{model}(x'), y)`:

    .. math::
        x'_{k+1} = \Pi_{B_\infty(x, \epsilon) \cap [l, u]}\big(x'_k + \eta\,\mathrm{sign}\,\nabla_{x'}\mathrm{CE}(f(x'_k), y)\big)

    ``random_start``: ``"uniform"`` in the ε-ball, ``"normal"`` (``0.001·N(0, 1)``, MTARD's
    training attack) or ``"none"``. ``lower``/``upper`` bound every feature (broadcast against
    ``x``), widened to contain ``x``. The model is put in eval mode while attacked; gradients
    flow to the input only, and it works inside Lightning's inference mode.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            y = y.detach().clone()
            if lower is not None:
                lower = torch.minimum(lower.to(x0), x0)
            if upper is not None:
                upper = torch.maximum(upper.to(x0), x0)
            if random_start == "uniform":
                noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
                adv = x0 + (2 * noise - 1) * epsilon
            elif random_start == "normal":
                adv = x0 + 0.001 * torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
            elif random_start == "none":
                adv = x0.clone()
            else:
                raise ValueError(f"random_start must be 'uniform', 'normal' or 'none', got {random_start!r}")
            adv = _project(adv, x0, epsilon, lower, upper)
            for _ in range(steps):
                adv.requires_grad_(True)
                (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
                adv = _project(adv.detach() + step_size * grad.sign(), x0, epsilon, lower, upper)
    finally:
        model.train(was_training)
    return adv.detach()


def _project(adv, x0, epsilon, lower, upper):
    adv = torch.clamp(adv, x0 - epsilon, x0 + epsilon)
    if lower is not None:
        adv = torch.maximum(adv, lower)
    if upper is not None:
        adv = torch.minimum(adv, upper)
    return adv
