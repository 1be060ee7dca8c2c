"""``kd.dkd``: Decoupled knowledge distillation (Zhao et al., CVPR 2022)."""

from __future__ import annotations

from typing import Any

from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, KDModule, temperature_hparam


@register("kd.dkd", views=GAP_VIEWS)
class DecoupledKD(KDModule):
    """Decoupled KD: CE + min(epoch/warmup, 1)·(α·TCKD + β·NCKD) (Zhao et al., CVPR 2022).

    The warm-up counts epochs from 1, as the official code does: the first epoch already has
    weight 1/warmup. The loss is :func:`.losses.decoupled_kd`.
    """

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)
    alpha = HParam(float, 1.0, 0.0, 10.0, help="weight of TCKD (target vs non-target)")
    beta = HParam(float, 8.0, 0.0, 20.0, help="weight of NCKD (among non-target classes)")
    ce_weight = HParam(float, 1.0, 0.0, 10.0, help="weight of the hard-label CE")
    warmup = HParam(int, 20, 0, 1000, help="epochs over which the DKD term ramps up linearly (0: none)")

    def warmup_factor(self) -> float:
        return 1.0 if self.warmup == 0 else min((self.current_epoch + 1) / self.warmup, 1.0)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.decoupled_kd(
            self.student(x),
            self.teacher_logits(x),
            y,
            self.temperature,
            self.alpha,
            self.beta,
            self.ce_weight,
            self.warmup_factor(),
        )
