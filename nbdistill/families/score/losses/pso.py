r"""Pairwise Sample Optimization (Miao et al., "Tuning Timestep-Distilled Diffusion Model Using Pairwise
Sample Optimization", ICLR 2025, arXiv 2410.03190): a Diffusion-DPO-style loss on pairs of a
target-like sample ``x^w`` (the data to tune toward) and a reference sample ``x^l`` drawn from the
distilled model itself, with a frozen reference model ``ref`` (the model before tuning).

Each sample's log-likelihood under a denoiser is stood in for by its denoising error at a noisy copy
``x_t = α_t x + σ_t ε`` (the same ``t`` and ``ε`` for both members of a pair, as in Diffusion-DPO):
``e_θ(x) = ‖x − D_θ(x_t, t)‖²``. With the log-ratios ``Δ(x) = e_θ(x) − e_ref(x)`` (lower is likelier),

    L_PSO = − log σ( − β [ Δ(x^w) − Δ(x^l) ] ),

which raises the target sample's likelihood relative to the reference model and lowers the model's
own sample's: the "relative likelihood margin" of the paper. Equal log-ratios give ``log 2``;
``∂L/∂e_θ(x^w) > 0`` and ``∂L/∂e_θ(x^l) < 0``.

nbdistill writes the errors in x0-space; Diffusion-DPO's ε-space error is ``SNR_t`` times it
(``ε − ε̂ = (α_t/σ_t)(x̂ − x)``), a factor the paper folds into ``β``'s time weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..schedule import per_sample


def denoising_error(denoiser, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule) -> torch.Tensor:
    """``e(x0) = ‖x0 − D(α_t x0 + σ_t ε, t)‖²`` per sample ``[B]`` (``t`` one time per sample ``[B]``)."""
    x_t = per_sample(schedule.alpha(t), x0) * x0 + per_sample(schedule.sigma(t), x0) * eps
    return (x0 - denoiser(x_t, t)).flatten(1).pow(2).sum(1)


def pso_loss(err_w: torch.Tensor, ref_err_w: torch.Tensor, err_l: torch.Tensor, ref_err_l: torch.Tensor, beta: float) -> dict:
    """``L = −log σ(−β [(e_θ(x^w) − e_ref(x^w)) − (e_θ(x^l) − e_ref(x^l))])`` averaged over the pairs, under
    ``"loss"``, with the mean implicit reward margin ``−β [Δ(x^w) − Δ(x^l)]`` and the fraction of pairs it
    ranks right (``> 0``)."""
    margin = -beta * ((err_w - ref_err_w) - (err_l - ref_err_l))
    return {
        "loss": -F.logsigmoid(margin).mean(),
        "reward_margin": margin.detach().mean(),
        "pair_accuracy": (margin.detach() > 0).to(margin.dtype).mean(),
    }
