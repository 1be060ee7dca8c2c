"""Teacher–student gap metrics for classifiers (pure functions, tensors in, numbers out)."""

from __future__ import annotations

import torch

from .divergence import kl_divergence


def mean_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    r"""Mean over samples of :math:`\mathrm{KL}(p_t \| p_s) = \sum_c p_{t,c} (\log p_{t,c} - \log p_{s,c})` at T = 1."""
    return kl_divergence(teacher_logits.float(), student_logits.float()).mean()


def classification_gap(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> dict[str, object]:
    """Accuracies, their gap, top-1 agreement, mean KL(teacher‖student) and per-class accuracies.

    Returns scalars ``teacher_acc``, ``student_acc``, ``gap`` (teacher − student), ``agreement``,
    ``kl``, lists ``per_class_teacher``, ``per_class_student``, ``per_class_gap`` (NaN for a
    class absent from ``labels``) and ``agreement_matrix``: counts of (teacher prediction,
    student prediction) pairs, rows indexed by the teacher's prediction.
    """
    t_pred = teacher_logits.argmax(-1)
    s_pred = student_logits.argmax(-1)
    t_ok = (t_pred == labels).float()
    s_ok = (s_pred == labels).float()
    counts = torch.bincount(labels, minlength=num_classes).float()
    per_t = torch.bincount(labels, weights=t_ok, minlength=num_classes) / counts
    per_s = torch.bincount(labels, weights=s_ok, minlength=num_classes) / counts
    return {
        "teacher_acc": t_ok.mean().item(),
        "student_acc": s_ok.mean().item(),
        "gap": (t_ok.mean() - s_ok.mean()).item(),
        "agreement": (t_pred == s_pred).float().mean().item(),
        "kl": mean_kl(teacher_logits, student_logits).item(),
        "per_class_teacher": per_t.tolist(),
        "per_class_student": per_s.tolist(),
        "per_class_gap": (per_t - per_s).tolist(),
        "agreement_matrix": torch.bincount(t_pred * num_classes + s_pred, minlength=num_classes**2)
        .view(num_classes, num_classes)
        .tolist(),
    }
