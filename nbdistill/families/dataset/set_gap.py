"""The dataset family's evaluation hook: the gap a distilled set leaves, measured by training on it.

A synthetic set is judged by what a fresh network learns from it: at every validation and on the
test split at the end of fit, a fresh copy of the module's ``student`` is trained on the current
set (:func:`.evaluate.train_on` with the method's :meth:`eval_settings`, ``eval_epochs`` epochs,
relabelled by :meth:`relabel_teacher` where the method has one) and compared, as every classifier
family is, with the teacher when there is one (:class:`~nbdistill.core.evaluation.ClassificationGap`:
``student_acc``, agreement, KL, per class).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.evaluation import ClassificationGap
from .evaluate import train_on


class DistilledSetGap(ClassificationGap):
    """:class:`ClassificationGap` of the network trained on the distilled set (cached until the next step)."""

    def __init__(self) -> None:
        super().__init__()
        self._net: nn.Module | None = None
        self._key: tuple | None = None

    def network(self, module: Any) -> nn.Module:
        """A fresh ``module.student`` trained on ``module.distilled()``, once per (step, epoch)."""
        key = (module.global_step, module.current_epoch)
        if self._net is None or self._key != key:
            with torch.inference_mode(False), torch.enable_grad():
                images, labels = (t.detach().clone() for t in module.distilled())
                self._net = train_on(
                    module.student,
                    images,
                    labels,
                    module.eval_settings(),
                    module.seed + module.global_step,
                    module.relabel_teacher(),
                )
            self._key = key
        return self._net

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        x, y = batch[0], batch[1]
        s = self.network(module)(x).detach()
        t = module.teacher_logits(x).detach() if len(module.teachers) else s
        self.outputs.setdefault(stage, []).append((t.cpu(), s.cpu(), y.cpu()))
