r"""The one KL divergence between two classifiers' tempered softmaxes (every family uses this one)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""Per-sample :math:`\mathrm{KL}(p_t^T \| p_s^T) = \sum_c p^T_{t,c}(\log p^T_{t,c} - \log p^T_{s,c})`,
    shape ``[B]``, with :math:`p^T = \mathrm{softmax}(z/T)` over the last dimension.

    Per sample, so that a loss chooses its reduction (``.mean()`` is PyTorch's "batchmean") and
    its weighting (Hinton's :math:`T^2`); the gradient flows into both arguments (detach the
    teacher's logits where it must not learn).
    """
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1)
