r"""MTARD's losses and its self-balancing rules ("Enhanced Accuracy and Robustness via Multi-Teacher
Adversarial Distillation", Zhao et al., ECCV 2022; the entropy-based temperature balance of its
extension B-MTARD, arXiv 2306.16170). The method and its choices: :mod:`..mtard`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence

#: The range [1, 10] the teachers' temperatures are clipped to.
TEMPERATURE_RANGE = (1.0, 10.0)


def tempered_teacher_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, tau: float) -> torch.Tensor:
    r""":math:`\frac1B\sum_i \mathrm{KL}\big(\mathrm{softmax}(z_{t,i}/\tau)\,\|\,\mathrm{softmax}(z_{s,i})\big)`: only the teacher is tempered."""
    return kl_divergence(teacher_logits / tau, student_logits).mean()


def teacher_entropy(teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Mean Shannon entropy :math:`H = -\frac1B\sum_i\sum_c p_{ic}\log p_{ic}` of :math:`p = \mathrm{softmax}(z/\tau)`.

    The authors' code averages :math:`p\log p` (a *negative* entropy) over all elements; the
    temperature rule only uses the ratio of two such values, which is the same for both.
    """
    log_p = F.log_softmax(teacher_logits / tau, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def update_temperatures(
    tau_adv: float, tau_nat: float, h_adv: float, h_nat: float, lr: float, bounds: tuple[float, float] = TEMPERATURE_RANGE
) -> tuple[float, float]:
    r"""B-MTARD's entropy-based balance, one step:

    .. math::
        \tau_{adv} \leftarrow \mathrm{clip}\big(\tau_{adv} - \eta_\tau\,\mathrm{sign}(H_{adv}/H_{nat} - 1)\big),\quad
        \tau_{nat} \leftarrow \mathrm{clip}\big(\tau_{nat} - \eta_\tau\,\mathrm{sign}(H_{nat}/H_{adv} - 1)\big)

    clipped to ``bounds`` ([1, 10]). The teacher whose tempered prediction is the softer (higher
    entropy) is sharpened, the other softened, so both carry a like amount of information.
    """
    low, high = bounds
    if h_adv <= 0 or h_nat <= 0:  # a one-hot teacher: no ratio to balance, only soften it
        step_adv, step_nat = (-1.0 if h_adv <= 0 else 0.0), (-1.0 if h_nat <= 0 else 0.0)
    else:
        step_adv, step_nat = _sign(h_adv / h_nat - 1.0), _sign(h_nat / h_adv - 1.0)
    tau_adv = min(max(tau_adv - lr * step_adv, low), high)
    tau_nat = min(max(tau_nat - lr * step_nat, low), high)
    return tau_adv, tau_nat


def _sign(v: float) -> float:
    return float(v > 0) - float(v < 0)


def update_weights(weights: torch.Tensor, losses: torch.Tensor, initial_losses: torch.Tensor, lr: float) -> torch.Tensor:
    r"""MTARD's normalised loss balance, one step, for K objectives:

    .. math::
        \hat L_i = L_i / L_i^{init},\quad r_i = \hat L_i \big/ \tfrac1K\textstyle\sum_j \hat L_j,\quad
        w_i \leftarrow w_i - \eta_w\big(w_i - r_i / \textstyle\sum_j r_j\big)

    then clamped at 0 and renormalised to sum 1 (the ECCV code's :math:`\beta = 1`). The objective
    whose loss has fallen least relative to its start gets the larger target share.
    """
    l_hat = losses / initial_losses
    r = l_hat / l_hat.mean()
    weights = weights - lr * (weights - r / r.sum())
    weights = weights.clamp_min(0.0)
    total = weights.sum()
    return weights / total if total > 0 else torch.full_like(weights, 1.0 / len(weights))
