"""``kd.mi_alpha``: Distiller's MI-α, Hinton KD plus an interpolated MI bound between representations (He et al., 2021)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, LayerPairKD, alpha_hparam, layer_hparam, temperature_hparam
from .heads import CosineCritic


@register("kd.mi_alpha", views=GAP_VIEWS)
class MIAlphaKD(LayerPairKD):
    """Distiller's MI-α: Hinton KD plus the α-interpolated MI bound between intermediate representations (He et al., 2021).

    Loss: α_CE·CE + (1 − α_CE)·T²·KL − w·I_α(h_s; h_t) (:func:`.losses.hinton_kd`,
    :func:`.losses.mi_alpha_bound`), with a cosine critic on learned projections of the two
    representations and a learned scalar log-baseline log q.
    """

    student_layer = layer_hparam("student")
    teacher_layer = layer_hparam("teacher")
    mi_alpha = HParam(float, 0.5, 0.0, 1.0, help="α of the MI bound: 1 = InfoNCE (biased, low variance), 0 = NWJ/TUBA")
    mi_weight = HParam(float, 1.0, 0.0, 10.0, help="weight of −I_α in the loss")
    critic_temperature = HParam(float, 0.1, 0.01, 10.0, help="τ of the cosine critic f = cos/τ")
    temperature = temperature_hparam(4.0)
    alpha = alpha_hparam()

    def build_parts(self) -> None:
        super().build_parts()
        self.log_baseline = nn.Parameter(torch.zeros(()))

    def build_heads(self, x: torch.Tensor) -> None:
        self.critic = CosineCritic(*self.feature_shapes(x), temperature=self.critic_temperature)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, hs = self.student_features(x)
        zt, ht = self.teacher_features(x)
        terms = losses.hinton_kd(zs, zt, y, self.temperature, self.alpha)
        mi = losses.mi_alpha_bound(self.critic(hs, ht), self.log_baseline, self.mi_alpha)
        return {**terms, "loss": terms["loss"] - self.mi_weight * mi, "mi": mi}
