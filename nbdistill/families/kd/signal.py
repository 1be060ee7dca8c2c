r"""``kd.signal``: signal knowledge distillation (SKD): a convolution-transformer teacher distilled into a small 1-D CNN.

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
:math:`\lambda = 1 - \alpha` the objective is Hinton KD: :func:`.losses.signal_kd` calls :func:`.losses.hinton_kd`.
"""

from __future__ import annotations

from typing import Any

from ...core.batches import as_pair
from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, KDModule, temperature_hparam


@register("kd.signal", views=GAP_VIEWS)
class SignalKD(KDModule):
    """Signal KD (ClST's SKD, Hou et al. 2024): λ·T²·KL + (1 − λ)·CE, on 1-D signals [channels, length]."""

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)
    soft_weight = HParam(float, 0.7, 0.0, 1.0, help="λ: weight of T²·KL; 1 − λ weighs the CE on labels")

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        x = as_pair(batch)[0]
        if x.dim() != 3:
            raise ConfigError(
                f"kd.signal distils 1-D signals of shape [channels, length] (e.g. nd.data.MNIST1D()); "
                f"got inputs of shape {list(x.shape[1:])}"
            )
        super().check_compatibility(batch, num_classes)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.signal_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.soft_weight)
