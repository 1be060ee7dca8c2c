"""``kd.diswot``: student architecture search without training, then Hinton KD (Dong, Li & Wei,
"DisWOT: Student Architecture Search for Distillation WithOut Training", CVPR 2023)."""

from __future__ import annotations

from typing import Any

import torch

from ....core.batches import as_pair
from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ....models import MLP
from .. import losses
from ..base import GAP_VIEWS, KDModule, alpha_hparam, temperature_hparam
from . import diswot_views  # noqa: F401  (registers the diswot_search view)
from .diswot_score import INITS, TeacherReference
from .diswot_search import Candidate, best, evolve, mlp_params


@register("kd.diswot", views=(*GAP_VIEWS, "diswot_search"))
class DisWOT(KDModule):
    """DisWOT: pick the student by a training-free score, then distil it with Hinton KD.

    Before training (in :meth:`check_compatibility`, on the probe batch ``nd.fit`` and ``nbdistill
    fit`` draw from the training data), an aging evolution (:mod:`.diswot_search`) searches MLPs
    with the data's input and output sizes and at most as many parameters as the student given,
    scoring each by :mod:`.diswot_score` (relation + ``semantic_weight`` × semantic similarity of
    randomly initialised teacher and candidate on that batch; no training). ``self.student`` is then replaced by the
    best candidate, a fresh ``nbdistill.models.MLP`` (PyTorch's default init, seeded by
    ``search_seed``), so the run's recorded setting rebuilds it and ``run.student()`` is the
    searched, distilled network. It is trained with the loss of ``kd.hinton``
    (:func:`..losses.hinton_kd`). The search is seeded and depends only on the batch, the teacher's
    architecture and the hyper-parameters, so a resume finds the same student.

    The student given must be an ``nbdistill.models.MLP`` (its size sets the budget, its dropout is
    kept): any other network is refused with a :class:`ConfigError`. To score networks of your own,
    use :func:`.diswot_score.score_candidates`. When training starts, the search is written to the
    run as the table ``diswot/search`` (every candidate: hidden widths, parameters, similarities,
    score, the chosen one marked) with the scalars ``diswot/budget``, ``diswot/chosen_params`` and
    ``diswot/chosen_score``.
    """

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)
    alpha = alpha_hparam(0.1)
    population = HParam(int, 8, 2, 64, help="architectures the evolutionary search keeps (aging evolution)")
    generations = HParam(int, 24, 0, 500, help="children the search evaluates after the first population")
    max_depth = HParam(int, 3, 1, 6, help="most hidden layers of a searched student")
    search_seed = HParam(int, 0, 0, 2**31 - 1, help="seed of the search, of the scoring inits and of the chosen student")
    semantic_weight = HParam(
        float, 1.0, 0.0, 100.0, help="weight w of the semantic similarity: score = relation + w * semantic (1: the paper's code)"
    )
    teacher_init = HParam(
        str, "random", choices=INITS, help="score with a randomly initialised teacher (the paper) or the trained one"
    )

    def build_parts(self) -> None:
        super().build_parts()
        if not isinstance(self.student, MLP):
            raise ConfigError(
                f"kd.diswot searches MLP students and takes its parameter budget from the student given, "
                f"which must be an nbdistill.models.MLP; got {type(self.student).__name__}. Pass e.g. "
                "student=nd.models.MLP(64, [32], 10), or score your own networks with "
                "nbdistill.families.kd.pipelines.diswot_score.score_candidates(teacher, candidates, batch)"
            )
        s = self.student
        # the given student's sizes (a plain dict: the module itself would become a trained submodule)
        self.given = {
            "in_features": s.in_features,
            "hidden": list(s.hidden),
            "out_features": s.out_features,
            "dropout": s.dropout,
        }
        self.budget = mlp_params(s.in_features, s.hidden, s.out_features)
        self.searched: list[Candidate] | None = None
        self.chosen: Candidate | None = None

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        super().check_compatibility(batch, num_classes)
        if self.searched is None:
            self.search(batch)

    def search(self, batch: Any) -> Candidate:
        """Run the search on one labelled batch and make its best candidate the student."""
        x, y = as_pair(batch)[:2]
        g = self.given
        dtype = next(self.student.parameters()).dtype

        def fitness(hidden):
            return reference.score(MLP(g["in_features"], list(hidden), g["out_features"]).to(dtype), f"MLP {list(hidden)}")

        with torch.random.fork_rng(devices=[]):  # the search leaves the global RNG as it was
            reference = TeacherReference(self.teacher, x, y, self.search_seed, self.teacher_init, self.semantic_weight)
            self.searched = evolve(
                fitness,
                g["in_features"],
                g["out_features"],
                g["hidden"],
                self.budget,
                self.population,
                self.generations,
                self.max_depth,
                self.search_seed,
            )
            self.chosen = best(self.searched)
            torch.manual_seed(self.search_seed)
            student = MLP(g["in_features"], list(self.chosen.hidden), g["out_features"], dropout=g["dropout"])
        self.student = student.to(dtype)
        return self.chosen

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.searched is None:
            raise RuntimeError(
                "kd.diswot searches its student on a probe batch: call check_compatibility(batch) before training "
                "(nbdistill.fit and `nbdistill fit` do)"
            )

    def on_fit_start(self) -> None:
        super().on_fit_start()
        writer = self._run_writer()
        if writer is None or self.global_rank != 0 or writer.info.get("resumed") or not self.searched:
            return
        columns = ["candidate", "hidden", "params", "relation", "semantic", "score", "chosen"]
        rows = [
            [c.order, "-".join(map(str, c.hidden)) or "(none)", c.params, c.relation, c.semantic, c.score, c == self.chosen]
            for c in self.searched
        ]
        writer.table("diswot/search", columns, rows, step=0)
        writer.scalar("diswot/budget", self.budget, step=0)
        writer.scalar("diswot/chosen_params", self.chosen.params, step=0)
        writer.scalar("diswot/chosen_score", self.chosen.score, step=0)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.alpha)
