r"""``kd.fair``: fair representation distillation, after Sikder, Ramachandranpillai, de Leng & Heintz,
"Generating Synthetic Fair Syntax-agnostic Data by Learning and Distilling Fair Representation"
(arXiv:2408.10755, 2024).

The paper learns a fair latent space (a VAE whose latent is made independent of the sensitive
attribute by a distance-covariance penalty), then distils that latent into a smaller encoder with
a *quality* loss (the student's latent matches the fair teacher's) and a KL-based *utility* loss,
and generates fair synthetic data from the distilled latent. nbdistill keeps the two stages and
the three ingredients on a classification task (fair tabular data, :class:`nbdistill.data.FairTabular`):

1. the fair teacher: a classifier whose latent (the input of its last layer) is trained with
   :math:`\mathrm{CE} + \lambda_t\,\mathrm{dCov}^2(z_t, s)`
   (:func:`.fair_teacher.train_fair_teacher`), trained here when no teacher is given;
2. the student (the model the pipeline produces, ``run.student()``): quality (its latent, mapped
   to the teacher's width by a learned linear map, regresses the teacher's), utility (Hinton's
   :math:`\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}`) and a fairness loss
   :math:`\lambda\,\mathrm{dCov}^2(z_s, s)` on its own latent (:func:`.fair_metrics.fair_distillation`).

What is not verified: only the paper's abstract and summary could be read (no official code was
found), so the exact form of its quality loss (taken here as the mean squared error between
latents) and of its utility loss (here Hinton's KL on the class outputs) are assumptions.
nbdistill differs on purpose: the teacher is a classifier, not a VAE, and no data is generated
(the demonstration is a fair *classifier*, measured by its demographic-parity gap and accuracy,
:class:`.fair_evaluation.FairGap`); the student also carries the fairness penalty on its own
latent (``fairness``; 0 turns it off), because the hard-label term of the utility re-learns the
labels' bias otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ....core.module import freeze
from ....core.registry import HParam, register
from ..base import GAP_VIEWS, KDModule, alpha_hparam, temperature_hparam
from ..features import PENULTIMATE, capture, resolve
from .fair_evaluation import FairGap
from .fair_metrics import fair_distillation
from .fair_teacher import check_groups, split_tensors, train_fair_teacher

#: The views of ``kd.fair``: the KD views and the parity gap against the accuracy over training.
FAIR_VIEWS = (*GAP_VIEWS, "fair_parity")


@register("kd.fair", views=FAIR_VIEWS, needs_teacher=False)
class FairKD(KDModule):
    """Fair representation distillation: a fair latent distilled with quality, utility and fairness losses (Sikder et al., 2024).

    Batches are ``(x, y, s)`` with ``s`` the 0/1 sensitive attribute (:class:`nbdistill.data.FairTabular`).
    Without a teacher, one with a fair latent is trained first (``teacher/*`` events). The loss is
    :func:`.fair_metrics.fair_distillation`; the evaluation adds the demographic-parity gap of
    teacher and student (``val/student_parity_gap``, ``test/student_parity_gap``, ...).
    """

    quality = HParam(
        float, 1.0, 0.0, 10.0, help="weight β of the quality loss: MSE between the student's (mapped) and the teacher's latent"
    )
    fairness = HParam(
        float, 10.0, 0.0, 100.0, help="weight λ of the fairness loss dCov²(student latent, s); 0: distillation + utility only"
    )
    temperature = temperature_hparam(2.0)
    alpha = alpha_hparam(0.1)
    teacher_fairness = HParam(
        float, 20.0, 0.0, 100.0, help="weight of dCov²(teacher latent, s) when kd.fair trains its own teacher"
    )
    teacher_epochs = HParam(int, 20, 1, 1000, help="epochs of the fair teacher trained when none is given")
    evaluation_class = FairGap

    def build_parts(self) -> None:
        super().build_parts()
        resolve(self.student, PENULTIMATE, "student")
        self.projector: nn.Module | None = None
        if len(self.teachers):
            resolve(self.teacher, PENULTIMATE, "teacher")
            for name in ("teacher_fairness", "teacher_epochs"):  # no teacher is trained: they have no effect
                self.hparams.pop(name, None)
            self.save_hyperparameters(self.hparams)

    def check_data(self, data: Any) -> None:
        """Every split must carry the sensitive attribute, 0/1, both groups in training."""
        check_groups(data)

    def setup(self, stage: str) -> None:
        """Train the fair teacher when none was given, then the linear map from the student's latent
        to the teacher's (sized on two training inputs)."""
        tensors = split_tensors(self.trainer.datamodule, "train")
        if not len(self.teachers):
            self.teachers.append(freeze(self._train_teacher(tensors)))
        if self.projector is None:
            x = tensors[0][:2]
            with torch.no_grad():
                _, (student,) = capture(self.student, x, [PENULTIMATE], "student")
                _, (teacher,) = capture(self.teacher, x, [PENULTIMATE], "teacher")
            self.projector = nn.Linear(student[0].numel(), teacher[0].numel())

    def _train_teacher(self, tensors: tuple[torch.Tensor, ...]) -> nn.Module:
        x, y, s = tensors[:3]
        classes = getattr(self.trainer.datamodule, "num_classes", None) or int(y.max()) + 1
        writer = self._run_writer()

        def report(epoch: int, loss: float, dcov: float) -> None:
            if writer is not None:
                writer.scalar("teacher/train_loss", loss, step=epoch)
                writer.scalar("teacher/dcov", dcov, step=epoch)

        teacher = train_fair_teacher(
            x, y, s, classes, self.teacher_fairness, self.teacher_epochs, seed=torch.initial_seed() % 2**31, report=report
        )
        if writer is not None:
            writer.flush()
        return teacher

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y, s = batch[0], batch[1], batch[2]
        logits, (latent,) = capture(self.student, x, [PENULTIMATE], "student")
        with torch.no_grad():
            teacher_logits, (teacher_latent,) = capture(self.teacher, x, [PENULTIMATE], "teacher")
        latent = latent.flatten(1)
        return fair_distillation(
            logits,
            teacher_logits,
            y,
            latent,
            self.projector(latent),
            teacher_latent.flatten(1),
            s,
            self.quality,
            self.fairness,
            self.temperature,
            self.alpha,
        )
