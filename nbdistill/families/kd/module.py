"""Knowledge-distillation LightningModules, each registered by name (``kd.*``)."""
from __future__ import annotations

from typing import Any

from torch import nn

from ...core.module import DistillModule
from ...core.registry import HParam, register
from . import losses

GAP_VIEWS = ("losses", "gap", "per_class_gap")


@register(
    "kd.hinton",
    hparams=[
        HParam("temperature", float, 4.0, 1.0, 20.0, help="softening temperature T"),
        HParam("alpha", float, 0.1, 0.0, 1.0, help="weight of the hard-label CE; 1 − alpha weighs T²·KL"),
    ],
    views=GAP_VIEWS,
)
class HintonKD(DistillModule):
    """Hinton KD: α·CE + (1 − α)·T²·KL(p_t^T ‖ p_s^T) (Hinton, Vinyals & Dean, 2015)."""

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        temperature: float = 4.0,
        alpha: float = 0.1,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.temperature = temperature
        self.alpha = alpha

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.alpha)


@register("kd.student_only", views=GAP_VIEWS, needs_teacher=False)
class StudentOnly(DistillModule):
    """The student trained alone with cross-entropy: the baseline every distillation gap is measured from.

    A teacher, when given, is only used to measure the gap; it never enters the loss.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.cross_entropy(self.student(x), y)
