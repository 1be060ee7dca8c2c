r"""Knowledge-distillation losses: pure functions, tensors in, scalar tensor out."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""Per-sample :math:`\mathrm{KL}(p_t^T \| p_s^T)`, shape ``[B]``, with :math:`p^T = \mathrm{softmax}(z/T)`."""
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1)


def hinton_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.1,
) -> dict[str, torch.Tensor]:
    r"""Hinton knowledge distillation ("Distilling the Knowledge in a Neural Network",
    Hinton, Vinyals & Dean, 2015):

    .. math::
        \mathcal{L} = \alpha\,\mathrm{CE}(z_s, y) + (1-\alpha)\,T^2\,
        \frac{1}{B}\sum_{i=1}^{B} \mathrm{KL}\big(p_{t,i}^T \,\|\, p_{s,i}^T\big),
        \qquad p^T = \mathrm{softmax}(z / T).

    The KL is summed over classes and averaged over the batch ("batchmean"); the :math:`T^2`
    keeps the soft term's gradient on the scale of the hard term's as T changes (paper §2).

    Returns the terms ``ce``, ``kd`` (:math:`T^2`·KL, batchmean) and the total ``loss``.
    """
    ce = F.cross_entropy(student_logits, labels)
    kd = temperature**2 * kl_divergence(teacher_logits, student_logits, temperature).mean()
    return {"loss": alpha * ce + (1.0 - alpha) * kd, "ce": ce, "kd": kd}


def cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain cross-entropy on the labels: the student trained alone, the reference for every gap."""
    ce = F.cross_entropy(student_logits, labels)
    return {"loss": ce, "ce": ce}
