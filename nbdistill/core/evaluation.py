"""Evaluation hooks: what "the gap" between teacher and student is in a family.

A module holds one :class:`Evaluation` (``evaluation_class``); the base calls it at every
validation epoch and on the test split when fitting ends (on every process under DDP), and writes
what it returns to the run folder: its scalars as ``<stage>/<name>``, its richer events through
:meth:`Evaluation.write_events`. A family plugs in its own (class accuracy and agreement here;
distances of samples to the data, regret or perplexity in the families to come) without
overriding a Lightning step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .batches import as_pair
from .errors import ConfigError
from .gap import classification_gap


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``net`` (in eval mode) on ``(x, y)``."""
    was_training = net.training
    net.eval()
    correct = sum(
        int((net(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum()) for i in range(0, len(y), batch_size)
    )
    net.train(was_training)
    return correct / max(len(y), 1)


class Evaluation:
    """The evaluation hook's contract. ``collect`` gathers one batch, ``compute`` reduces a stage."""

    def __init__(self) -> None:
        self.outputs: dict[str, list[Any]] = {}

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """Raise :class:`ConfigError` if a training batch cannot be evaluated (called before training)."""

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        """Gather what ``compute`` needs from one batch of ``stage`` (``"val"`` or ``"test"``)."""
        raise NotImplementedError

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        """The metrics of ``stage`` over what was collected (and forget it); ``{}`` when nothing was."""
        raise NotImplementedError

    def discard(self, stage: str) -> None:
        self.outputs.pop(stage, None)

    def scalars(self, module: Any, metrics: dict[str, Any]) -> dict[str, float]:
        """Which metrics are logged as ``<stage>/<name>`` scalars: the numbers."""
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        """Write the richer events (points, tables, histograms) of ``metrics`` to the run folder."""

    def test_batches(self, module: Any, datamodule: Any) -> Iterator[Any]:
        """The test split's batches on the module's device, for the evaluation at the end of fit."""
        for batch in datamodule.test_dataloader():
            yield [b.to(module.device) for b in as_pair(batch)]


class ClassificationGap(Evaluation):
    """Teacher–student gap of classifiers: accuracies, agreement, KL, per class (:func:`classification_gap`).

    Without a teacher only the student's accuracy is logged.
    """

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """The student (and each teacher) must map the batch's inputs to logits ``[batch, classes]``,
        all with the same number of classes, and that the data's when it has one."""
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ConfigError(
                f"{type(module).__name__} needs batches of (inputs, labels), got {type(batch).__name__}; make the data "
                "yield (x, y) pairs or pass data=(X, y)"
            )
        x = batch[0]
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"the batches' inputs must be tensors, got {type(x).__name__}; make the data yield (x, y) tensors")
        shape = tuple(x.shape[1:])
        with torch.no_grad():
            s = probe(module.student, x[:2], "student", shape)
            if s.dim() != 2:
                raise ConfigError(f"the student must output logits of shape [batch, classes], got {tuple(s.shape)}")
            for i, t in enumerate(module.teachers):
                out = probe(t, x[:2], "teacher" if len(module.teachers) == 1 else f"teacher {i}", shape)
                if out.shape[-1] != s.shape[-1]:
                    raise ConfigError(
                        f"the student outputs {s.shape[-1]} classes but the teacher outputs {out.shape[-1]}; "
                        "give the student's last layer as many outputs as the teacher's"
                    )
        if num_classes is not None and s.shape[-1] != num_classes:
            raise ConfigError(
                f"the data has {num_classes} classes but the student outputs {s.shape[-1]}; give the student's last "
                f"layer {num_classes} outputs (or, if the data has fewer classes, its labels must be 0..{s.shape[-1] - 1})"
            )

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        x, y = batch[0], batch[1]
        s = module.student_logits(x).detach()
        t = module.teacher_logits(x).detach() if len(module.teachers) else s
        self.outputs.setdefault(stage, []).append((t.cpu(), s.cpu(), y.cpu()))

    def gathered(self, module: Any, stage: str) -> tuple[torch.Tensor, ...] | None:
        """The teacher logits, student logits and labels collected for ``stage`` (all processes' at
        validation under DDP: each saw its shard of the validation set), or None."""
        outputs = self.outputs.pop(stage, [])
        if not outputs:
            return None
        parts = tuple(torch.cat(p) for p in zip(*outputs))
        if stage == "val" and module._trainer is not None and module.trainer.world_size > 1:
            parts = tuple(module.all_gather(v.to(module.device)).flatten(0, 1).cpu() for v in parts)
        return parts

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.gathered(module, stage)
        if parts is None:
            return {}
        t, s, y = parts[:3]
        return classification_gap(t, s, y, num_classes=s.shape[-1])

    def scalars(self, module: Any, metrics: dict[str, Any]) -> dict[str, float]:
        scalars = super().scalars(module, metrics)
        if not len(module.teachers):
            scalars = {k: v for k, v in scalars.items() if k == "student_acc"}
        return scalars

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        """Per-class gap (``points``) and the teacher-vs-student agreement matrix (``table``)."""
        if not len(module.teachers) or "per_class_gap" not in metrics:
            return
        classes = list(range(len(metrics["per_class_gap"])))
        step = module.global_step
        writer.points(
            f"{stage}/per_class_gap",
            classes,
            metrics["per_class_gap"],
            step=step,
            teacher=metrics["per_class_teacher"],
            student=metrics["per_class_student"],
        )
        if "agreement_matrix" in metrics:
            writer.table(f"{stage}/agreement_matrix", classes, metrics["agreement_matrix"], step=step)


def probe(model: nn.Module, x: torch.Tensor, who: str, shape: tuple) -> torch.Tensor:
    """``model(x)`` in eval mode, or a :class:`ConfigError` saying the ``who`` cannot take inputs of ``shape``."""
    was_training = model.training
    model.eval()
    try:
        return model(x)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"the {who} cannot take the data's inputs of shape {list(shape)}: {exc}") from exc
    finally:
        model.train(was_training)
