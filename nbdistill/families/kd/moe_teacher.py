"""``kd.moe_teacher``: a mixture-of-experts teacher distilled into a dense student (Switch Transformers, §4.2)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, KDModule


@register("kd.moe_teacher", views=GAP_VIEWS)
class MoETeacherKD(KDModule):
    """A mixture-of-experts teacher distilled into a dense student, as in Switch Transformers (Fedus, Zoph & Shazeer, 2022, §4.2).

    The student learns from 0.25·teacher probabilities + 0.75·label at T = 1
    (:func:`.losses.switch_distillation`); the paper also initialises the dense student from the
    teacher's non-expert weights (``init_from_teacher``, which needs an
    :class:`~nbdistill.models.moe.MoEMLP` teacher whose stem and head have the shapes of the
    student's first and last Linear layers). The paper adds no per-expert or gate-aware term, and
    neither does this method.
    """

    supports_teacher_cache = True
    teacher_weight = HParam(float, 0.25, 0.0, 1.0, help="λ: the target is λ·teacher probabilities + (1 − λ)·one-hot label")
    init_from_teacher = HParam(
        bool, False, help="start the student's first and last Linear from the teacher's non-expert stem and head"
    )

    def build_parts(self) -> None:
        super().build_parts()
        if self.init_from_teacher:
            copy_non_expert_weights(self.teacher, self.student)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.switch_distillation(self.student(x), self.teacher_logits(x), y, self.teacher_weight)


def copy_non_expert_weights(teacher: nn.Module, student: nn.Module) -> None:
    """Copy a :class:`MoEMLP` teacher's stem and head into the student's first and last ``nn.Linear``."""
    from ...models.moe import MoEMLP

    moe = next((m for m in teacher.modules() if isinstance(m, MoEMLP)), None)
    if moe is None:
        raise ConfigError("init_from_teacher needs a mixture-of-experts teacher (nbdistill.models.MoEMLP, e.g. zoo 'digits-moe')")
    linears = [m for m in student.modules() if isinstance(m, nn.Linear)]
    pairs = list(zip(moe.non_expert_layers(), (linears[0], linears[-1]) if linears else ()))
    shapes = [(tuple(t.weight.shape), tuple(s.weight.shape)) for t, s in pairs]
    if len(pairs) != 2 or any(a != b for a, b in shapes):
        raise ConfigError(
            "init_from_teacher: the student's first and last Linear must have the shapes of the teacher's "
            f"stem and head {[tuple(t.weight.shape) for t in moe.non_expert_layers()]}, got "
            f"{[b for _, b in shapes] or 'no Linear layers'}"
        )
    with torch.no_grad():
        for t, s in pairs:
            s.weight.copy_(t.weight)
            s.bias.copy_(t.bias)
