r"""Signal knowledge distillation (SKD): a convolution-transformer teacher distilled into a small 1-D CNN.

"ClST: A Convolutional Transformer Framework for Automatic Modulation Recognition by Knowledge
Distillation", Hou, Li, Lin, Liang & Han, IEEE Trans. Wireless Communications 23(7), 2024
(arXiv 2312.17446). The paper trains a convolution-linked signal transformer (ClST) on radio
signals and distils it into light CNNs (KD-CNN, KD-MobileNet) with soft targets and a hybrid loss:

.. math::
    \mathcal{L}_{SKD} = \lambda\,T^2\,\frac1B\sum_i \mathrm{KL}\big(p^T_{t,i}\,\|\,p^T_{s,i}\big) + (1-\lambda)\,\mathrm{CE}(z_s, y),
    \qquad p^T = \mathrm{softmax}(z/T).

Here the signals are MNIST-1D's (``[1, 40]``, generated locally), the teacher is
:class:`~nbdistill.models.signal.ConvTransformer1D` (zoo ``mnist1d-convtransformer``) and the
student :class:`~nbdistill.models.signal.SignalCNN`. Only the paper's abstract and summaries could
be read here (two searches, in two sessions, found neither its full text nor its code): that the
soft term is scaled by :math:`T^2` and weighted by λ (the *distillation* weight, the reverse of
``kd.hinton``'s α) is our reading, **UNVERIFIED**. With
:math:`\lambda = 1 - \alpha` the objective equals Hinton KD, which the tests check.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .module import GAP_VIEWS, KDModule


def signal_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    soft_weight: float = 0.7,
) -> dict[str, torch.Tensor]:
    r""":math:`\lambda\,T^2\,\mathrm{KL}(p_t^T\|p_s^T) + (1-\lambda)\,\mathrm{CE}(z_s, y)` (batchmean KL),
    λ = ``soft_weight``. Returns ``soft`` (:math:`T^2`·KL), ``ce`` and the total ``loss``."""
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    soft = temperature**2 * (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()
    ce = F.cross_entropy(student_logits, labels)
    return {"loss": soft_weight * soft + (1 - soft_weight) * ce, "soft": soft, "ce": ce}


@register(
    "kd.signal",
    hparams=[
        HParam("temperature", float, 4.0, 1.0, 20.0, help="softening temperature T"),
        HParam("soft_weight", float, 0.7, 0.0, 1.0, help="λ: weight of T²·KL; 1 − λ weighs the CE on labels"),
    ],
    views=GAP_VIEWS,
)
class SignalKD(KDModule):
    """Signal KD (ClST's SKD, Hou et al. 2024): λ·T²·KL + (1 − λ)·CE, on 1-D signals [channels, length]."""

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        temperature: float = 4.0,
        soft_weight: float = 0.7,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.temperature = temperature
        self.soft_weight = soft_weight

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        x = batch[0]
        if x.dim() != 3:
            raise ConfigError(
                f"kd.signal distils 1-D signals of shape [channels, length] (e.g. nd.data.MNIST1D()); "
                f"got inputs of shape {list(x.shape[1:])}"
            )
        super().check_compatibility(batch, num_classes)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return signal_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.soft_weight)
