r"""The distillation loss of SimCLRv2's third step (Chen, Kornblith, Swersky, Norouzi & Hinton, "Big
Self-Supervised Models are Strong Semi-Supervised Learners", NeurIPS 2020, eq. 2 and 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence


def soft_cross_entropy(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""Per sample :math:`-\sum_y P^T(y|x;\tau)\log P^S(y|x;\tau)`, computed as
    :math:`\mathrm{KL}(P^T\|P^S) + H(P^T)` with the core KL (the entropy is constant for the student:
    the gradient is Hinton's KL gradient)."""
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    entropy = -(log_pt.exp() * log_pt).sum(-1)
    return kl_divergence(teacher_logits, student_logits, temperature) + entropy


def simclr_v2_distillation(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    alpha: float = 0.0,
    labelled_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    r"""SimCLRv2's distillation on unlabelled examples:

    .. math:: L = (1-\alpha)\,\tau^2\,\frac{1}{|B|}\sum_{x\in B} -\sum_y P^T(y|x;\tau)\log P^S(y|x;\tau)
              \;+\; \alpha\,\mathrm{CE}(P^S(\cdot|x_l), y_l)

    with the teacher detached. :math:`\alpha = 0` is the paper's eq. 2 (labels unused); :math:`\alpha > 0`
    its eq. 3 (the labelled cross-entropy on a labelled mini-batch added; the paper weighs the
    distillation by :math:`\alpha`, here ``alpha`` weighs the labelled CE as Hinton's α does across
    ``kd.*``). The :math:`\tau^2` factor is the official colab's ``add_kd_loss``, not in the paper's
    equations; with the default :math:`\tau = 1` both agree."""
    distill = temperature**2 * soft_cross_entropy(teacher_logits.detach(), student_logits, temperature).mean()
    terms = {"distill": distill}
    loss = (1.0 - alpha) * distill
    if alpha > 0 and labelled_logits is not None:
        terms["ce"] = F.cross_entropy(labelled_logits, labels)
        loss = loss + alpha * terms["ce"]
    terms["loss"] = loss
    return terms
