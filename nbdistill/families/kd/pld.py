"""``kd.pld``: Plackett–Luce distillation (Bassam, Zhu & Bian, 2025)."""

from __future__ import annotations

from typing import Any

from ...core.registry import register
from . import losses
from .base import GAP_VIEWS, KDModule, temperature_hparam


@register("kd.pld", views=GAP_VIEWS)
class PlackettLuceKD(KDModule):
    """Plackett–Luce distillation: a teacher-confidence-weighted ListMLE of the teacher-optimal ranking (Bassam, Zhu & Bian, 2025).

    It replaces CE + KD by one loss (:func:`.losses.plackett_luce_distillation`); T softens only the
    teacher's confidence weights.
    """

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.plackett_luce_distillation(self.student(x), self.teacher_logits(x), y, self.temperature)
