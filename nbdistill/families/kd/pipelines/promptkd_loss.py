r"""PromptKD's math: the teacher's class vectors (computed once) and the unsupervised KD loss.

Li et al., "PromptKD: Unsupervised Prompt Distillation for Vision-Language Models", CVPR 2024;
official code ``zhengli97/PromptKD``, ``trainers/promptkd.py`` (``PromptKD.forward_backward``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ....core.divergence import kl_divergence
from ..features import penultimate_layer


@torch.no_grad()
def class_vectors(teacher: nn.Module) -> torch.Tensor:
    r"""The teacher's class vectors ``[classes, width]``, L2-normalised: the rows :math:`w_c` of its
    last ``nn.Linear`` (its classifier), whose input is its penultimate features :math:`h_t`.

    In PromptKD the class vectors are CLIP's text features of the class names: computed from the
    classes alone, no image needed, once, and shared with the student, whose logits are
    :math:`s\cos(\text{image feature}, \text{class vector})`. A classifier teacher's row :math:`w_c`
    is the same kind of thing: it needs no data, lives in the teacher's feature space, and the
    teacher scores class :math:`c` by :math:`w_c^\top h_t = \|w_c\|\|h_t\|\cos(w_c, h_t)`
    (its bias and norms are what the cosine drops).
    """
    return F.normalize(penultimate_layer(teacher, "teacher").weight.detach().clone(), dim=-1)


def promptkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    r""":math:`L_{ukd} = T^2 \cdot \frac{1}{B\,C}\sum_{b}\mathrm{KL}(p_t^T \| p_s^T)` on unlabeled inputs,
    as the official code computes it: ``F.kl_div(..., reduction="sum") * T * T / stu_logits.numel()``
    (``numel = B·C``, so PyTorch's "batchmean" divided by the number of classes), with
    ``KD_WEIGHT = 1`` and no label term (``CE_WEIGHT = 0``). The student's logits are
    ``logit_scale · cos(projected image feature, class vector)`` (the student computes them).
    """
    batch, classes = student_logits.shape
    kl = kl_divergence(teacher_logits.detach(), student_logits, temperature).sum() / (batch * classes)
    loss = kl * temperature * temperature
    return {"kd": loss.detach(), "loss": loss}
