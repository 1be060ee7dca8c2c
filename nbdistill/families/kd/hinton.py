"""``kd.hinton``: Hinton knowledge distillation (Hinton, Vinyals & Dean, 2015)."""

from __future__ import annotations

from typing import Any

from ...core.registry import register
from . import losses
from .base import GAP_VIEWS, KDModule, alpha_hparam, temperature_hparam


@register("kd.hinton", views=GAP_VIEWS)
class HintonKD(KDModule):
    """Hinton KD: α·CE + (1 − α)·T²·KL(p_t^T ‖ p_s^T) (Hinton, Vinyals & Dean, 2015).

    The loss is :func:`.losses.hinton_kd`.
    """

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)
    alpha = alpha_hparam(0.1)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.alpha)
