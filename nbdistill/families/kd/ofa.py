"""``kd.ofa``: One-for-All KD across architectures (Hao et al., NeurIPS 2023)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, HeadsFromFeatures
from .features import PENULTIMATE, capture, resolve_all
from .heads import LogitProjector


@register("kd.ofa", views=GAP_VIEWS)
class OneForAllKD(HeadsFromFeatures):
    """One-for-All KD: student stages projected into logit space, adaptive target enhancement ε (Hao et al., NeurIPS 2023).

    Every stage named in ``stages`` gets a projector head to class logits, distilled (like the
    final logits) against the teacher's final logits (:func:`.losses.one_for_all_kd`). Only logits
    meet, so teacher and student may be of any architectures (e.g. a conv teacher and an MLP student).
    """

    supports_teacher_cache = True
    stages = HParam(str, PENULTIMATE, help="comma-separated student layers whose features get a logit projector")
    eps = HParam(float, 1.5, 0.1, 5.0, help="target enhancement exponent ε (1: soft-label CE)")
    temperature = HParam(float, 1.0, 0.1, 20.0, help="softening temperature T")
    gt_weight = HParam(float, 1.0, 0.0, 10.0, help="weight of the hard-label CE")
    kd_weight = HParam(float, 1.0, 0.0, 10.0, help="weight of the OFA loss on the final logits")
    ofa_weight = HParam(float, 1.0, 0.0, 10.0, help="weight of the OFA losses of the stage projectors")

    def build_parts(self) -> None:
        super().build_parts()
        self.stage_names = resolve_all(
            self.student, self.stages, "student", "kd.ofa: name at least one student stage in 'stages'"
        )

    def build_heads(self, x: torch.Tensor) -> None:
        out, features = capture(self.student, x, self.stage_names, "student")
        self.projectors = nn.ModuleList(LogitProjector(f.shape[1:], out.shape[-1]) for f in features)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, features = capture(self.student, x, self.stage_names, "student")
        stage_logits = [head(f) for head, f in zip(self.projectors, features)]
        return losses.one_for_all_kd(
            zs,
            stage_logits,
            self.teacher_logits(x),
            y,
            self.eps,
            self.temperature,
            self.gt_weight,
            self.kd_weight,
            self.ofa_weight,
        )
