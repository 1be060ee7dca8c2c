"""``dataset.cda``: squeeze, recover (from batch-norm statistics, with a crop curriculum), relabel."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from ...core.module import freeze
from ...core.registry import HParam, register
from .augment import random_resized_crop
from .base import DatasetDistillModule
from .evaluate import EvalSettings, train_on
from .losses import bn_statistics_loss
from .nets import has_batch_norm
from .schedules import cda_min_crop


class BatchStatistics:
    """Forward hooks recording, at the input of every batch-norm layer, the batch's per-channel
    mean and (biased) variance (SRe²L's ``BNFeatureHook``), during :meth:`forward` only."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.means: list[torch.Tensor] = []
        self.variances: list[torch.Tensor] = []
        self.active = False
        self.handles = [m.register_forward_hook(self._record) for m in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output on ``x``, recording the statistics of this pass."""
        self.means, self.variances, self.active = [], [], True
        try:
            return self.net(x)
        finally:
            self.active = False

    def _record(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not self.active:
            return
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        self.means.append(x.mean(dims))
        self.variances.append(x.var(dims, unbiased=False))

    def loss(self, first_multiplier: float) -> torch.Tensor:
        """:func:`.losses.bn_statistics_loss` of the last :meth:`forward`."""
        return bn_statistics_loss(
            self.means,
            self.variances,
            [m.running_mean for m in self.layers],
            [m.running_var for m in self.layers],
            first_multiplier,
        )


@register("dataset.cda", views=("losses", "crop_curriculum", "distilled_accuracy", "synthetic_images"), needs_teacher=False)
class CDA(DatasetDistillModule):
    r"""CDA: SRe²L's recover step with a curriculum of crops (Yin & Shen, "Dataset Distillation via
    Curriculum Data Synthesis in Large Data Era", TMLR 2024; after Yin, Xing & Shen, "Squeeze,
    Recover and Relabel", NeurIPS 2023).

    1. *Squeeze*: a network with batch norm trained on the real data — ``teacher`` when given,
       otherwise a copy of ``student`` (which then must have batch norm) trained ``squeeze_epochs``.
    2. *Recover*: the images, in ``ipc`` batches of one image per class, minimise
       :math:`\mathrm{CE}(f(\tilde x), y) + r_{bn}\sum_l m_l(\|\mu_l - \mu_l^{BN}\|_2 + \|\sigma^2_l - \sigma^{2,BN}_l\|_2)`
       on random resized crops of themselves (:func:`.losses.bn_statistics_loss`), with Adam
       (β = 0.5, 0.9) and a cosine learning rate. The crops' smallest scale follows the curriculum
       :func:`.schedules.cda_min_crop`: whole images first, small crops later (easy to hard); the
       crop is shifted by up to ``jitter`` pixels. After each step the pixels are clipped to the
       range of the real data (the official code clips to the valid image range).
    3. *Relabel*: with ``relabel``, the evaluation network learns the teacher's soft predictions
       on each augmented batch.

    The curriculum ends at crops of ``smallest_crop`` of the area (CDA: 0.08, for 224-pixel
    images). On the kit's 8×8 digits that is a 2×2-pixel crop and it hurts: after 300 iterations
    at 10 images per class, one fresh network trained on the set scored 78 % with whole images
    only (``milestone=1, crop_schedule="step"``), 75 % / 69 % / 62 % with ``smallest_crop`` 0.5 /
    0.25 / 0.08 — all below 10 random real digits per class (89 %, ``bench/dataset_methods.py``).
    """

    init = HParam(str, "noise", choices=("noise", "real"), help="start from noise (the paper) or real images")
    lr = HParam(float, 0.25, 1e-4, 100.0, log=True, help="Adam learning rate of the images (cosine decay to 0)")
    r_bn = HParam(float, 0.01, 0.0, 100.0, log=False, help="weight of the batch-norm statistic loss")
    first_bn_multiplier = HParam(float, 10.0, 0.0, 100.0, help="extra weight of the first BN layer")
    milestone = HParam(float, 0.5, 0.0, 1.0, help="fraction of the iterations over which the crops shrink")
    smallest_crop = HParam(float, 0.08, 0.01, 1.0, help="the crops' smallest area fraction at the end of the curriculum")
    crop_schedule = HParam(str, "cosine", choices=("cosine", "linear", "step"), help="shape of the crop curriculum")
    jitter = HParam(int, 1, 0, 64, help="random shift (pixels, circular) of each crop")
    squeeze_epochs = HParam(int, 30, 1, 1000, help="epochs of the BN teacher trained when none is given")
    relabel = HParam(bool, True, help="evaluate with the teacher's soft labels on each batch (SRe²L's relabel)")

    def build_parts(self) -> None:
        super().build_parts()
        self._stats: BatchStatistics | None = None

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        super().check_compatibility(batch, num_classes)
        source = self.teacher if self.teacher is not None else self.student
        if not has_batch_norm(source):
            who = "the teacher" if self.teacher is not None else "the student (squeezed into a teacher, as no teacher was given)"
            raise ConfigError(
                f"dataset.cda recovers images from batch-norm statistics but {who} has no batch norm; "
                "pass a teacher with BatchNorm layers or a student such as nd.models.ConvNet(norm='batch')"
            )

    def prepare(self) -> None:
        if self.teacher is None:
            settings = EvalSettings(epochs=self.squeeze_epochs, augment=self.augment)
            with torch.random.fork_rng(devices=[]):
                net = train_on(self.student, self.real.x, self.real.y, settings, seed=self.seed)
            self.teachers.append(freeze(net))
        self._stats = BatchStatistics(self.teacher)

    def configure_optimizers(self):
        opt = torch.optim.Adam([self.images], lr=self.lr, betas=(0.5, 0.9), weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}

    def min_crop(self) -> float:
        total = max(1, int(self.trainer.estimated_stepping_batches))
        return cda_min_crop(self.global_step / total, self.milestone, self.crop_schedule, self.smallest_crop)

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        g = self.step_generator()
        min_crop = self.min_crop()
        self.log("dd/min_crop", min_crop, on_step=True, on_epoch=False)
        targets = torch.arange(self.num_classes, device=self.device)
        ce = bn = self.images.new_zeros(())
        for j in range(self.ipc):
            x = random_resized_crop(self.images[j :: self.ipc], min_crop, int(torch.randint(2**31 - 1, (1,), generator=g)))
            if self.jitter:
                shifts = [int(s) for s in torch.randint(0, self.jitter + 1, (2,), generator=g)]
                x = torch.roll(x, shifts=shifts, dims=(2, 3))
            ce = ce + F.cross_entropy(self._stats.forward(x), targets)
            bn = bn + self._stats.loss(self.first_bn_multiplier)
        return {"loss": ce + self.r_bn * bn, "ce": ce, "bn": bn}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            self.images.clamp_(float(self.real.x.min()), float(self.real.x.max()))

    def relabel_teacher(self) -> nn.Module | None:
        return self.teacher if self.relabel else None
