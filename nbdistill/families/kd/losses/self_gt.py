r"""The deep-network objective of self-distillation with ground-truth weighting ("Even your Teacher
Needs Guidance: Ground-Truth Targets Dampen Regularization Imposed by Self-Distillation", Borup &
Andersen, NeurIPS 2021): the squared error of the authors' ResNet experiments and their parameter-norm
regulariser. The kernel ridge analysis: :mod:`..kernel_ridge`; the method: :mod:`..self_gt`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def self_distillation_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None, alpha: float
) -> dict[str, torch.Tensor]:
    r""":math:`\alpha\,\mathrm{MSE}(\sigma(z_s), e_y) + (1-\alpha)\,\mathrm{MSE}(\sigma(z_s), \sigma(z_t))`,
    MSE averaged over batch and classes, :math:`\sigma` the softmax; the first step (no teacher) is
    :math:`\mathrm{MSE}(\sigma(z_s), e_y)`. Equal, up to a constant, to the squared error to the
    mixed target :math:`\alpha e_y + (1-\alpha)\sigma(z_t)`."""
    probs = torch.softmax(student_logits, dim=-1)
    onehot = F.one_hot(labels, probs.shape[-1]).to(probs.dtype)
    label_term = F.mse_loss(probs, onehot)
    if teacher_logits is None:
        return {"loss": label_term, "label": label_term}
    teacher_term = F.mse_loss(probs, torch.softmax(teacher_logits, dim=-1))
    return {"loss": alpha * label_term + (1 - alpha) * teacher_term, "label": label_term, "teacher": teacher_term}


def parameter_norm(module: nn.Module) -> torch.Tensor:
    r""":math:`\sum_p \|p\|_2` over the trainable tensors of ``module``: the Frobenius norm of each, not
    squared, summed (the regulariser of Borup & Andersen's ``self_distiller.py``, weighted there by ``--reg_coef``)."""
    norms = [p.norm() for p in module.parameters() if p.requires_grad]
    return torch.stack(norms).sum() if norms else torch.zeros(())
