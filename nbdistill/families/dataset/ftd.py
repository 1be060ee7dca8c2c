"""``dataset.ftd``: Minimizing the Accumulated Trajectory Error to Improve Dataset Distillation (Du et al., CVPR 2023)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ...core.registry import HParam, register
from .experts import ExpertRecipe
from .trajectory_base import VIEWS, TrajectoryMatching

#: FTD's GSAM surrogate-gap weight α: the default of ``--alpha`` in AngusDujw/FTD-distillation
#: ``buffer/buffer_FTD.py`` (0.4), which its ``run_buffer.sh`` does not override. DATM's README
#: trains its (FTD) experts with ``--alpha=0.3``; ``dataset.datm`` keeps that.
FTD_GSAM_ALPHA = 0.4
DATM_GSAM_ALPHA = 0.3


@register("dataset.ftd", views=VIEWS, needs_teacher=False)
class FTD(TrajectoryMatching):
    r"""FTD: MTT on flat experts with an EMA of the images ("Minimizing the Accumulated Trajectory
    Error to Improve Dataset Distillation", Du et al., CVPR 2023).

    The experts are trained with GSAM (:func:`.experts.gsam_direction`, radius ``rho``, weight
    ``gsam_alpha``; FTD's code: ρ = 0.01 in ``run_buffer.sh``, α = 0.4 its default) so their
    trajectories are flat and the student's accumulated error matters less;
    the images are tracked by an exponential moving average
    :math:`\bar X \leftarrow d\,\bar X + (1-d)\,X` after every update, and :math:`\bar X` is the set
    evaluated. With ρ = 0 and d = 0 this is MTT. The paper's decay 0.9995 is for 5 000 iterations;
    the default 0.99 suits the kit's runs of a few hundred.
    """

    rho = HParam(float, 0.01, 0.0, 1.0, help="GSAM perturbation radius ρ of the experts (0: plain SGD)")
    gsam_alpha = HParam(float, FTD_GSAM_ALPHA, 0.0, 1.0, help="GSAM's surrogate-gap weight α (FTD's code: 0.4)")
    ema_decay = HParam(float, 0.99, 0.0, 0.99999, help="decay of the EMA of the images, the copy that is evaluated")

    def expert_recipe(self) -> ExpertRecipe:
        return replace(super().expert_recipe(), optimizer="gsam", rho=self.rho, gsam_alpha=self.gsam_alpha)

    def add_synthetic_parameters(self) -> None:
        super().add_synthetic_parameters()
        self.register_buffer("images_ema", self.images.detach().clone())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        with torch.no_grad():
            self.images_ema.mul_(self.ema_decay).add_(self.images.detach(), alpha=1 - self.ema_decay)

    def distilled(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images_ema, self.labels
