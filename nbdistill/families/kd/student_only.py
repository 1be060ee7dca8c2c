"""``kd.student_only``: the student trained alone, the baseline every distillation gap is measured from."""

from __future__ import annotations

from typing import Any

from ...core.registry import register
from . import losses
from .base import GAP_VIEWS, KDModule


@register("kd.student_only", views=GAP_VIEWS, needs_teacher=False)
class StudentOnly(KDModule):
    """The student trained alone with cross-entropy: the baseline every distillation gap is measured from.

    A teacher, when given, is only used to measure the gap; it never enters the loss.
    """

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.cross_entropy(self.student(x), y)
