"""``kd.promptkd``'s gap: the classification gap, plus the student's accuracy with zero prompts in
place of its learned ones and the mean cosine of its features to each class vector by true class."""

from __future__ import annotations

from typing import Any

import torch

from ....core.evaluation import ClassificationGap


class PromptGap(ClassificationGap):
    """:class:`ClassificationGap` and, for a prompted student (``features(x, use_prompts)``):

    - ``student_acc_zero_prompts``: its accuracy when its prompts are set to zero (the frozen
      encoder and trained projector without what the prompts learned);
    - ``class_cosine``: ``[true class, class vector]`` mean of cos(student feature, class vector),
      written as the ``<stage>/class_cosine`` table.
    """

    def __init__(self) -> None:
        super().__init__()
        self.prompted: dict[str, list[tuple[torch.Tensor, ...]]] = {}

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        super().collect(module, batch, stage)
        student = module.student
        if not hasattr(student, "features"):
            return
        x, y = batch[0], batch[1]
        zero = student(x, use_prompts=False).detach().argmax(-1)
        cosine = (student.features(x) @ student.class_vectors.t()).detach()
        self.prompted.setdefault(stage, []).append((zero.cpu(), cosine.cpu(), y.cpu()))

    def discard(self, stage: str) -> None:
        super().discard(stage)
        self.prompted.pop(stage, None)

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        metrics = super().compute(module, stage)
        parts = self.prompted.pop(stage, [])
        if not parts or not metrics:
            return metrics
        zero, cosine, y = (torch.cat(p) for p in zip(*parts))
        if stage == "val" and module._trainer is not None and module.trainer.world_size > 1:  # as gathered() does
            zero, cosine, y = (module.all_gather(v.to(module.device)).flatten(0, 1).cpu() for v in (zero, cosine, y))
        metrics["student_acc_zero_prompts"] = (zero == y).float().mean().item()
        classes = cosine.shape[1]
        rows = [cosine[y == c].mean(0).tolist() if (y == c).any() else [None] * classes for c in range(classes)]
        metrics["class_cosine"] = rows
        return metrics

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        super().write_events(module, writer, stage, metrics)
        if "class_cosine" in metrics:
            columns = [str(c) for c in range(len(metrics["class_cosine"]))]
            writer.table(f"{stage}/class_cosine", columns, metrics["class_cosine"], step=module.global_step)
