r"""``kd.self_gt``: iterative self-distillation with ground-truth weighting.

"Even your Teacher Needs Guidance: Ground-Truth Targets Dampen Regularization Imposed by
Self-Distillation", Borup & Andersen, NeurIPS 2021 (arXiv 2102.13088). At step τ a fresh model
of the same architecture is fitted to a mix of the labels and the previous step's predictions;
the paper's analysis, for kernel ridge regression, is in :mod:`.kernel_ridge`.

The deep module uses a fixed α, default 0.6 (the authors' README command for ResNets), and, as
their ``self_distiller.py`` does, the squared error between softmax outputs and the mixed target,
plus their parameter-norm regulariser :math:`c\sum_p \|p\|_2` (:func:`.losses.parameter_norm`: the sum of
the Frobenius norms of the trainable tensors, not squared; ``--reg_coef``, default :math:`c = 10^{-4}`),
in every generation, the first included.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ...core.module import freeze
from ...core.registry import HParam, register
from . import losses
from .base import KDModule


def generation_bounds(max_epochs: int, steps: int) -> list[int]:
    """First epoch of each generation after the first: ``max_epochs`` split into ``steps + 1`` near-equal
    generations (generation g starts at ⌊g·E/(steps + 1)⌋); too few epochs merge generations."""
    starts = sorted({(g * max_epochs) // (steps + 1) for g in range(1, steps + 1)})
    return [s for s in starts if 0 < s < max_epochs]


@register("kd.self_gt", views=("losses", "gap", "generations"), needs_teacher=False)
class SelfDistillationGT(KDModule):
    """Self-distillation with ground-truth weighting (Borup & Andersen, NeurIPS 2021): generation τ ≥ 1
    is a re-initialised copy of the student fitted to α·labels + (1 − α)·generation τ − 1.

    ``max_epochs`` is split into ``distillation_steps + 1`` generations; the first learns the labels
    alone. The loss is :func:`.losses.self_distillation_loss` plus ``reg_coef`` × :func:`.losses.parameter_norm` of
    the student (term ``reg``, unweighted), as in the authors' ``self_distiller.py``. A teacher, when
    given, is only used to measure the gap. Each generation's final validation accuracy is drawn by
    the ``generations`` view.
    """

    alpha = HParam(float, 0.6, 0.0, 1.0, help="weight of the ground truth; 1 − alpha weighs the previous generation")
    distillation_steps = HParam(int, 2, 1, 20, help="generations after the first, each a fresh network")
    reg_coef = HParam(
        float, 1e-4, 0.0, 1.0, help="weight c of the regulariser c·Σ‖p‖₂ over the student's tensors (authors' code: 1e-4)"
    )

    def build_parts(self) -> None:
        super().build_parts()
        self.previous = freeze(copy.deepcopy(self.student))
        self.register_buffer("generation", torch.zeros((), dtype=torch.long))
        self._generation_acc: list[float] = []

    def train(self, mode: bool = True) -> SelfDistillationGT:
        super().train(mode)
        self.previous.eval()
        return self

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        teacher = None
        if int(self.generation) > 0:
            with torch.no_grad():
                teacher = self.previous(x)
        terms = losses.self_distillation_loss(self.student(x), y, teacher, self.alpha)
        reg = losses.parameter_norm(self.student)
        return {**terms, "loss": terms["loss"] + self.reg_coef * reg, "reg": reg}

    def on_train_epoch_start(self) -> None:
        """A generation ends when the epoch that starts the next one begins (not at the end of its own
        last epoch): the periodic checkpoint, written at an epoch's end before the module's own
        epoch-end hook runs, then holds the generation as it was, and a resumed run switches at the
        same epoch as an uninterrupted one (the buffer ``generation`` says how many switches happened)."""
        bounds = generation_bounds(self.trainer.max_epochs, self.distillation_steps)
        due = sum(1 for b in bounds if b <= self.current_epoch)
        while int(self.generation) < due:
            acc = self.trainer.callback_metrics.get("val/student_acc")
            self._end_generation(None if acc is None else float(acc))

    def on_fit_end(self) -> None:
        super().on_fit_end()
        acc = self.trainer.callback_metrics.get("val/student_acc")
        self._record_generation(None if acc is None else float(acc))

    def _end_generation(self, acc: float | None) -> None:
        self._record_generation(acc)
        self.previous.load_state_dict(self.student.state_dict())
        for module in self.student.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for optimizer in self.trainer.optimizers:
            optimizer.state.clear()
        self.generation += 1

    def _record_generation(self, acc: float | None) -> None:
        self._generation_acc.append(float("nan") if acc is None else acc)
        writer = self._run_writer()
        if writer is not None:
            gens = list(range(len(self._generation_acc)))
            writer.points("self_gt/generation_acc", gens, self._generation_acc, step=self.global_step, alpha=self.alpha)
