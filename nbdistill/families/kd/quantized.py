"""``kd.quantized``: distillation through a bucketed uniform quantiser (Polino, Pascanu & Alistarh, ICLR 2018)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ...core.evaluation import ClassificationGap
from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, KDModule, alpha_hparam, temperature_hparam
from .quantize import full_precision_bits, load_quantized, quantized_parameters, quantized_size_bits


class QuantizedGap(ClassificationGap):
    """The gap of the quantised student, plus its storage ``size_bits`` (scales included) and
    ``compression`` (its 32-bit size / that)."""

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        metrics = super().compute(module, stage)
        if metrics:
            size = quantized_size_bits(module.student, module.bits, module.bucket_size)
            metrics.update(size_bits=size, compression=full_precision_bits(module.student) / size)
        return metrics


@register("kd.quantized", views=GAP_VIEWS)
class QuantizedKD(KDModule):
    """Quantized distillation: KD through a bucketed uniform quantiser, updates on full-precision weights (Polino, Pascanu & Alistarh, ICLR 2018).

    Every training step runs forward and backward at the quantised weights Q(w) and applies the
    gradient to the full-precision w (straight-through); the student is evaluated quantised, so the
    gap metrics are the quantised network's. Each evaluation also logs ``size_bits`` (the
    quantised student's storage, scales included) and ``compression`` (32-bit size / that).
    :meth:`quantized_student` returns the deployable quantised copy. The loss is :func:`.losses.hinton_kd`.
    """

    supports_teacher_cache = True
    evaluation_class = QuantizedGap
    bits = HParam(int, 4, 1, 16, help="bits per weight: 2**bits levels per bucket")
    bucket_size = HParam(int, 256, 1, 1_000_000, help="values per bucket, each scaled by its own min and max")
    stochastic = HParam(bool, False, help="stochastic (unbiased) rounding while training instead of nearest")
    temperature = temperature_hparam(2.0)
    alpha = alpha_hparam()

    def quantized_forward(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        params = quantized_parameters(
            self.student, self.bits, self.bucket_size, stochastic=training and self.stochastic, straight_through=training
        )
        return torch.func.functional_call(self.student, params, (x,))

    def student_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantized_forward(x, training=False)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.quantized_forward(x, training=True), self.teacher_logits(x), y, self.temperature, self.alpha)

    def quantized_student(self) -> nn.Module:
        """A copy of the student with its weights quantised (deterministic rounding)."""
        return load_quantized(copy.deepcopy(self.student), quantized_parameters(self.student, self.bits, self.bucket_size))
