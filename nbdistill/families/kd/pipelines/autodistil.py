"""``kd.autodistil``: a weight-sharing super-student, its sub-students ranked without retraining (AutoDistil)."""

from __future__ import annotations

from typing import Any

import torch

from ....core.batches import as_pair
from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ..base import GAP_VIEWS, KDModule, temperature_hparam
from ..features import PENULTIMATE, capture, resolve
from . import autodistil_views  # noqa: F401  (registers the view)
from .autodistil_objective import autodistil_objective
from .autodistil_subnets import check_supernet, mlp_params, pareto_front, sample_subnets, sliced_forward, spread, sub_space

#: The columns of the ``autodistil_subnets`` table, one row per ranked sub-student (best first).
#: ``val_objective`` is the task-agnostic loss averaged over the validation batches (its relation
#: term compares the examples of a batch, so it depends on the validation batch size).
COLUMNS = ["rank", "widths", "params", "val_acc", "val_objective", "pareto"]


@register("kd.autodistil", views=(*GAP_VIEWS, "autodistil_subnets"))
class AutoDistil(KDModule):
    r"""AutoDistil: one weight-sharing super-student, its sub-students ranked without retraining.

    AutoDistil (Xu et al., *AutoDistil: Few-shot Task-agnostic Neural Architecture Search for
    Distilling Large Language Models*, NeurIPS 2022; official code: github.com/microsoft/autodistil).

    The paper (a) partitions the Transformer search space into K compact sub-spaces by size (K = 3:
    base, small, tiny; ``subs_para_range`` keeps the sub-networks whose parameter count lies in a
    range), (b) trains ONE weight-sharing super-LM per sub-space with a task-agnostic distillation
    objective, and (c) picks students inside each super-LM without retraining them.

    Here a run trains the super-network of ONE sub-space; K sub-spaces are K runs whose students
    have different largest widths (e.g. ``MLP(64, [16], 10)``, ``MLP(64, [64], 10)``, ``MLP(64, [256], 10)``).

    - **Super-network**: the student, an :class:`nbdistill.models.MLP` whose hidden widths are the
      largest of the sub-space (any other model is refused before training). A sub-network keeps
      the first ``w_i`` units of hidden layer ``i`` (:mod:`.autodistil_subnets`); the sub-space is
      every combination of ``width_choices`` widths per layer from ``min_width`` of it to all of it.
      Depth is not searched: MLP layers of different widths cannot be skipped as DynaBERT skips
      equal-width Transformer layers.
    - **Training** (sandwich rule of the official loop): each step trains the largest, the smallest
      and ``subnets_per_step − 2`` random sub-networks (drawn with a generator seeded by the global
      step, as the official code seeds ``random`` with it, so a rerun or a resume draws the same),
      summing their losses into one backward pass (the official code accumulates their gradients,
      then steps once).
    - **Objective** (:mod:`.autodistil_objective`): labels are never used; :math:`T^2\,\mathrm{KL}`
      on the teacher's logits plus ``relation_weight`` times a MiniLM-style relation distillation of
      the last hidden layer, with relations between the examples of a batch in place of the attention
      relations between tokens (an MLP has no attention maps).
    - **Ranking**, when fitting ends, without retraining: up to ``max_ranked`` sub-students of the
      sub-space, evenly spread by size, are evaluated with the super-network's shared weights on the
      validation split: accuracy (the ranking key; ties go to the smaller), the task-agnostic
      objective and the parameter count, and whether each is on the accuracy–size Pareto front. They
      are written as the ``autodistil_subnets`` table and kept as ``module.ranking``. The paper ranks
      by a task-agnostic proxy or few-shot task accuracy; digits' validation labels are the task here.

    With several teachers, the first is distilled. ``self.student`` stays the super-network: ``run.student()`` gives it, and
    :func:`.autodistil_subnets.extract` ``(run.student(), widths)`` a standalone sub-student.
    Not verified against the paper: its exact proxy for the search (we could read the training loop
    of the official code, not the search scripts in full).
    """

    temperature = temperature_hparam(1.0)
    relation_weight = HParam(float, 1.0, 0.0, 100.0, help="weight of the relation distillation of the last hidden layer")
    subnets_per_step = HParam(
        int, 4, 1, 16, help="sub-networks trained each step: largest, smallest, the rest at random (sandwich rule)"
    )
    min_width = HParam(float, 0.25, 0.01, 1.0, help="narrowest width of the sub-space, as a fraction of each hidden layer")
    width_choices = HParam(int, 4, 1, 16, help="widths per hidden layer, evenly spaced from min_width to the full width")
    max_ranked = HParam(int, 64, 1, 1024, help="most sub-students ranked when fitting ends (spread evenly by size)")

    def build_parts(self) -> None:
        super().build_parts()
        check_supernet(self.student)
        if self.teacher is None:
            raise ConfigError("kd.autodistil distils a teacher's logits and last hidden layer: pass teacher=...")
        resolve(self.teacher, PENULTIMATE, "teacher")
        self.space = sub_space(self.student, self.min_width, self.width_choices)
        self.ranking: list[dict[str, Any]] = []

    # -- training: the sandwich rule over the sub-space ---------------------------------------------
    def sampled_subnets(self) -> list[tuple[int, ...]]:
        """This step's sub-networks (a function of the global step alone)."""
        generator = torch.Generator().manual_seed(int(self.global_step))
        return sample_subnets(self.space, self.subnets_per_step, generator)[: self.subnets_per_step]

    @torch.no_grad()
    def teacher_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's logits and last hidden features (the input of its last Linear)."""
        logits, (hidden,) = capture(self.teacher, x, [PENULTIMATE], "teacher")
        return logits, hidden

    def objective(self, x: torch.Tensor, widths, teacher: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The task-agnostic loss terms of sub-network ``widths`` on ``x``."""
        logits, hidden = sliced_forward(self.student, x, widths)
        return autodistil_objective(logits, teacher[0], hidden, teacher[1], self.temperature, self.relation_weight)

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        x = as_pair(batch)[0]
        teacher = self.teacher_outputs(x)
        per_subnet = [self.objective(x, widths, teacher) for widths in self.sampled_subnets()]
        n = len(per_subnet)
        return {
            "logit_kl": sum(t["logit_kl"] for t in per_subnet) / n,
            "relation": sum(t["relation"] for t in per_subnet) / n,
            "largest": per_subnet[0]["loss"],
            "smallest": per_subnet[1]["loss"] if n > 1 else per_subnet[0]["loss"],
            "loss": sum(t["loss"] for t in per_subnet),
        }

    # -- search without retraining -------------------------------------------------------------------
    @torch.no_grad()
    def rank_subnets(self, batches) -> list[dict[str, Any]]:
        """Evaluate up to ``max_ranked`` sub-students on ``batches`` with the shared weights; best first."""
        candidates = spread(self.space, self.max_ranked)
        correct = {w: 0 for w in candidates}
        objective = {w: 0.0 for w in candidates}
        seen = 0
        was_training = self.training
        self.eval()
        try:
            for batch in batches:
                x, y = as_pair(batch)[:2]
                x, y = x.to(self.device), y.to(self.device)
                teacher = self.teacher_outputs(x)
                for widths in candidates:
                    logits, hidden = sliced_forward(self.student, x, widths)
                    correct[widths] += int((logits.argmax(-1) == y).sum())
                    terms = autodistil_objective(logits, teacher[0], hidden, teacher[1], self.temperature, self.relation_weight)
                    objective[widths] += float(terms["loss"]) * len(x)
                seen += len(x)
        finally:
            self.train(was_training)
        if not seen:
            return []
        rows = [
            {
                "widths": list(w),
                "params": mlp_params(self.student.in_features, w, self.student.out_features),
                "val_acc": correct[w] / seen,
                "val_objective": objective[w] / seen,
            }
            for w in candidates
        ]
        for row, on_front in zip(rows, pareto_front([r["params"] for r in rows], [r["val_acc"] for r in rows])):
            row["pareto"] = on_front
        rows.sort(key=lambda r: (-r["val_acc"], r["params"]))
        for i, row in enumerate(rows):
            row["rank"] = i + 1
        return rows

    def on_fit_end(self) -> None:
        super().on_fit_end()
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "val_dataloader"):
            return
        self.ranking = self.rank_subnets(dm.val_dataloader())
        writer = self._run_writer()
        if writer is None or not self.ranking:
            return
        rows = [["-".join(map(str, r["widths"])) if c == "widths" else r[c] for c in COLUMNS] for r in self.ranking]
        writer.table("autodistil_subnets", COLUMNS, rows, step=self.global_step)
        writer.flush()
