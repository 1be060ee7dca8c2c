r"""LELP's loss over pseudo-subclasses ("Linear Projections of Teacher Embeddings for Few-Class
Distillation", Loo, Iliopoulos, Hu & Vee, arXiv 2409.20449). How the subclass directions are found
from the teacher's embeddings: :mod:`..subclasses`; the method: :mod:`..lelp`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence


def class_logits_from_subclasses(subclass_logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    r""":math:`\tilde z_c = \log\sum_k \exp(u_{c,k})`: the logits whose softmax is the sum of each class's
    subclass probabilities. Subclass ``k`` of class ``c`` is column ``c·S + k``."""
    b = subclass_logits.shape[0]
    return torch.logsumexp(subclass_logits.view(b, num_classes, -1), dim=-1)


def subclass_log_targets(
    teacher_logits: torch.Tensor, scores: torch.Tensor, temperature: float, subclass_temperature: float
) -> torch.Tensor:
    r""":math:`\log p_{c,k} = \log\mathrm{softmax}(z_t/T)_c + \log\mathrm{softmax}_k(s_{c,\cdot}/\beta)`, shape
    ``[B, C·S]``; ``scores`` is ``[B, C, S]``. Exponentiated and summed over k it gives back
    :math:`\mathrm{softmax}(z_t/T)`."""
    log_class = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_split = F.log_softmax(scores / subclass_temperature, dim=-1)
    return (log_class.unsqueeze(-1) + log_split).flatten(1)


def lelp_loss(
    student_subclass_logits: torch.Tensor,
    log_targets: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    temperature: float,
    alpha: float = 0.0,
) -> dict[str, torch.Tensor]:
    r""":math:`\alpha\,\mathrm{CE}(\tilde z_s, y) + (1-\alpha)\,T^2\,\frac1B\sum_i\mathrm{KL}(p_i\,\|\,\mathrm{softmax}(u_i/T))`
    over the C·S pseudo-subclasses (``log_targets`` from :func:`subclass_log_targets`: log-probabilities,
    which are logits of themselves, so the one KL takes them at T = 1 and the student's logits divided by T)."""
    kd = temperature**2 * kl_divergence(log_targets, student_subclass_logits / temperature).mean()
    ce = F.cross_entropy(class_logits_from_subclasses(student_subclass_logits, num_classes), labels)
    return {"loss": alpha * ce + (1 - alpha) * kd, "ce": ce, "kd": kd}


def subclass_scores(embeddings: torch.Tensor, fitted: dict[str, torch.Tensor], projector: torch.Tensor | None) -> torch.Tensor:
    r""":math:`s_{c,k}(x) = \langle v_{c,k}, P(h(x) - \mu_c)\rangle / \sigma_{c,k}`, shape ``[B, C, S]``."""
    centred = embeddings.unsqueeze(1) - fitted["mean"].unsqueeze(0)  # [B, C, d]
    if projector is not None:
        centred = centred @ projector.T
    return torch.einsum("bcd,csd->bcs", centred, fitted["directions"]) / fitted["scale"].unsqueeze(0)
