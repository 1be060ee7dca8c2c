"""``kd.fitnet``: FitNets, hint training through a learned regressor, then KD (Romero et al., ICLR 2015)."""

from __future__ import annotations

from typing import Any

import torch

from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, LayerPairKD, alpha_hparam, layer_hparam, temperature_hparam
from .heads import HintRegressor


@register("kd.fitnet", views=GAP_VIEWS)
class FitNet(LayerPairKD):
    """FitNets: hint training through a learned regressor, then KD (Romero et al., ICLR 2015).

    Stage 1 (the first ``hint_epochs`` epochs) minimises only the hint loss ½‖u_h − r(v_g)‖²
    (:func:`.losses.hint_loss`), which trains the student up to its guided layer and the regressor r;
    stage 2 trains the whole student with Hinton KD (the paper's second stage, here with a fixed α
    instead of its annealed λ). The guided and hint layers are picked by module name, so any
    student/teacher pair works.
    """

    student_layer = layer_hparam("student guided")
    teacher_layer = layer_hparam("teacher hint")
    hint_epochs = HParam(int, 10, 0, 1000, help="stage 1: epochs of hint training before the KD stage")
    temperature = temperature_hparam(4.0)
    alpha = alpha_hparam()

    def build_heads(self, x: torch.Tensor) -> None:
        self.regressor = HintRegressor(*self.feature_shapes(x))

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, guided = self.student_features(x)
        if self.current_epoch < self.hint_epochs:
            loss = losses.hint_loss(self.regressor(guided), self.teacher_features(x)[1])
            return {"loss": loss, "hint": loss}
        return losses.hinton_kd(zs, self.teacher_logits(x), y, self.temperature, self.alpha)
