"""``kd.simclr_v2``: SimCLRv2's semi-supervised recipe, ending with distillation on unlabelled data."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ....core.fastpath import adam
from ....core.module import freeze
from ....core.registry import HParam, register
from ..base import GAP_VIEWS, alpha_hparam, temperature_hparam
from . import simclr_v2_views  # noqa: F401 (registers the view)
from .label_fraction import LabelFractionKD
from .simclr_v2_loss import simclr_v2_distillation
from .ssl_encoder import encoder_width_hparam, pretrain, pretrain_epochs_hparam, ssl_temperature_hparam

#: Mini-batch size of the teacher's fine-tuning on the labelled subset.
FINETUNE_BATCH = 128
#: Adam learning rate of the teacher's fine-tuning.
FINETUNE_LR = 1e-3


@register("kd.simclr_v2", views=(*GAP_VIEWS, "ssl_pretraining"), needs_teacher=False)
class SimCLRv2KD(LabelFractionKD):
    r"""SimCLRv2: a self-supervised teacher fine-tuned on a label fraction, distilled on unlabelled data.

    SimCLRv2 (Chen, Kornblith, Swersky, Norouzi & Hinton, "Big Self-Supervised Models are Strong
    Semi-Supervised Learners", NeurIPS 2020), in its three steps:

    1. self-supervised pretraining of a bigger network (``encoder_width``) on every training input,
       labels unused: SimCLR's NT-Xent on two augmented views (shift, noise, drop-out; see
       :mod:`.ssl_encoder`), for ``pretrain_epochs``;
    2. fine-tuning on the labelled ``label_fraction`` only (stratified, :mod:`.label_fraction`), from
       the first layer of the projection head, for ``finetune_epochs`` (Adam, batch 128);
    3. distillation of that teacher into the student on the unlabelled examples (every training
       input; their labels are never read): :math:`L = -\sum_x\sum_y P^T(y|x;\tau)\log P^S(y|x;\tau)`
       (:func:`.simclr_v2_loss.simclr_v2_distillation`), plus ``alpha`` × the cross-entropy of a
       labelled mini-batch (the paper's variant with labels).

    The zoo's teacher has seen every training label, so for an honest accuracy against the label
    fraction this method builds its own teacher through steps 1-2 from the labelled fraction alone:
    it needs no teacher. A teacher passed in is used as given (steps 1-2 skipped). Steps 1-2 run in
    ``setup`` (events ``ssl/loss``, ``teacher/finetune_loss``, ``teacher/val_acc``); the Lightning
    epochs are step 3. ``run.student()`` is the distilled student; the teacher is in the checkpoint.

    Differences from the paper, for a 2-core CPU and 8×8 digits: an MLP encoder (64 → w → w) and a
    two-layer projection head instead of a ResNet and a three-layer head; Adam instead of LARS; no
    memory bank; digit augmentations instead of crops and colour distortion; the teacher is
    fine-tuned without augmentation. Verified against the official repository
    (github.com/google-research/simclr): NT-Xent as ``objective.add_contrastive_loss`` (halved), the
    distillation loss as the colab's ``add_kd_loss`` (with its τ²).
    """

    temperature = temperature_hparam(1.0)
    alpha = alpha_hparam(0.0)
    encoder_width = encoder_width_hparam("the teacher")
    pretrain_epochs = pretrain_epochs_hparam()
    ssl_temperature = ssl_temperature_hparam()
    finetune_epochs = HParam(int, 50, 1, 1000, help="epochs of fine-tuning the teacher on the labelled fraction")

    def setup(self, stage: str) -> None:
        super().setup(stage)
        data = self.trainer.datamodule
        x, x_l, y_l, classes = self.prepare(data)
        self.report("labels/labelled", len(y_l), 0)
        if len(self.teachers):
            return
        encoder, _ = pretrain(
            x, self.encoder_width, self.pretrain_epochs, self.ssl_temperature, self._seed,
            report=lambda epoch, loss: self.report("ssl/loss", loss, epoch),
        )  # fmt: skip
        teacher = self.finetune(encoder.classifier(classes), x_l, y_l, data)
        self.teachers.append(freeze(teacher.to(self.device)))

    def finetune(self, teacher: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, data: Any) -> torch.nn.Module:
        """Step 2: cross-entropy on the labelled subset, seeded; the validation accuracy at the end."""
        generator = torch.Generator().manual_seed(self._seed + 1)
        optimiser = adam(list(teacher.parameters()), lr=FINETUNE_LR)
        teacher.train()
        for epoch in range(1, self.finetune_epochs + 1):
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), FINETUNE_BATCH):
                part = order[start : start + FINETUNE_BATCH]
                loss = F.cross_entropy(teacher(x[part]), y[part])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(part)
            self.report("teacher/finetune_loss", total / len(x), epoch)
        teacher.eval()
        if hasattr(data, "dataset"):
            xv, yv = data.dataset("val").tensors[:2]
            with torch.no_grad():
                self.report("teacher/val_acc", (teacher(xv).argmax(1) == yv).float().mean().item(), self.finetune_epochs)
        return teacher

    def loss_terms(self, batch: Any) -> dict:
        x = batch[0]  # step 3 reads the inputs only: every training example counts as unlabelled
        labelled_logits = labels = None
        if self.alpha > 0:
            x_l, labels = self.labelled_batch(len(x), x.device)
            labelled_logits = self.student(x_l)
        return simclr_v2_distillation(
            self.student(x), self.teacher_logits(x), self.temperature, self.alpha, labelled_logits, labels
        )
