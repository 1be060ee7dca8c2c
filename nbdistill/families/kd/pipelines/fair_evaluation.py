"""``FairGap``: the teacher–student gap of classifiers plus each one's demographic-parity gap."""

from __future__ import annotations

from typing import Any

import torch

from ....core.errors import ConfigError
from ....core.evaluation import ClassificationGap, Evaluation
from ....core.gap import classification_gap
from .fair_metrics import group_rates, parity_gap
from .fair_teacher import NO_GROUPS


class FairGap(ClassificationGap):
    """:class:`~nbdistill.core.evaluation.ClassificationGap` (accuracies: the utility) with, from the
    batches' third element ``s``, ``student_parity_gap`` and ``teacher_parity_gap``
    (:func:`.fair_metrics.parity_gap`), logged as ``val/*`` every validation epoch and ``test/*``
    at the end; a ``<stage>/parity_rates`` table holds :math:`P(\\hat y = c \\mid s = g)`."""

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        super().check_batch(module, batch, num_classes)
        if len(batch) < 3 or not isinstance(batch[2], torch.Tensor):
            raise ConfigError(NO_GROUPS.format(what=f"batches of {len(batch)} element(s) (inputs, labels)"))

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        x, y, s = batch[0], batch[1], batch[2]
        student = module.student_logits(x).detach()
        teacher = module.teacher_logits(x).detach() if len(module.teachers) else student
        self.outputs.setdefault(stage, []).append((teacher.cpu(), student.cpu(), y.cpu(), s.cpu()))

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.gathered(module, stage)
        if parts is None:
            return {}
        teacher, student, y, s = parts[:4]
        classes = student.shape[-1]
        metrics = classification_gap(teacher, student, y, num_classes=classes)
        metrics["student_parity_gap"] = parity_gap(student.argmax(-1), s, classes)
        metrics["teacher_parity_gap"] = parity_gap(teacher.argmax(-1), s, classes)
        metrics["parity_rates"] = {
            "teacher": group_rates(teacher.argmax(-1), s, classes).tolist(),
            "student": group_rates(student.argmax(-1), s, classes).tolist(),
        }
        return metrics

    def scalars(self, module: Any, metrics: dict[str, Any]) -> dict[str, float]:
        scalars = Evaluation.scalars(self, module, metrics)
        if not len(module.teachers):
            scalars = {k: v for k, v in scalars.items() if k in ("student_acc", "student_parity_gap")}
        return scalars

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        super().write_events(module, writer, stage, metrics)
        rates = metrics.get("parity_rates")
        if not rates:
            return
        rows = [
            [who, c, rates[who][0][c], rates[who][1][c], abs(rates[who][0][c] - rates[who][1][c])]
            for who in (["teacher", "student"] if len(module.teachers) else ["student"])
            for c in range(len(rates[who][0]))
        ]
        writer.table(
            f"{stage}/parity_rates", ["model", "class", "P(ŷ=c|s=0)", "P(ŷ=c|s=1)", "gap"], rows, step=module.global_step
        )
