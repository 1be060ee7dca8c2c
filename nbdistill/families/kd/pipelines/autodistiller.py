r"""``kd.autodistiller``: pipeline recommendation, an evaluator-driven search over KD pipelines under a
fixed budget of evaluations.

Sources. "Distiller: A Systematic Study of Model Distillation Methods in Natural Language Processing"
(He, Shi, Mueller, Zha, Li & Karypis, SustaiNLP 2021, arXiv 2109.11105) splits a KD pipeline into
components (data augmentation, the loss on the outputs, the intermediate objective) and proposes
AutoDistiller, which recommends a close-to-optimal pipeline for a new data set. "Barbarians at the
Gate: How AI is Upending Systems Research" (Cheng et al., 2025, arXiv 2510.06189; ADRS) runs a
generate–evaluate–refine loop: generate candidate solutions, score each with an evaluator, refine
the most promising ones, keep the best.

What runs here (the ADRS loop over Distiller's components; :mod:`.autodistiller_search`): a
candidate is a (loss, temperature, intermediate objective, augmentation) choice; ``initial``
random candidates are generated, then each next one mutates one choice of a parent among the
``top_k`` best so far; each is evaluated (:mod:`.autodistiller_evaluate`) by distilling a fresh copy
of the student (``copy.deepcopy`` of the student with the weights it was given) for
``candidate_epochs`` epochs over the training split, its score the validation accuracy; until
``budget`` candidates have been evaluated.

Not verified, and how it differs. Only the abstracts of both papers could be read (no full text,
no code): Distiller's exact search space and AutoDistiller's algorithm are not checked. As far as
we know AutoDistiller is meta-learned (a model, fitted on Distiller's many runs across data sets,
predicts which pipeline suits a new one) rather than a search on the new data set; nbdistill has no
such meta-data, so the recommendation is made the ADRS way, by evaluating candidates. ADRS's
generator is an LLM ensemble that rewrites code (OpenEvolve); here it is a seeded random proposal
over a fixed discrete space. The space uses the losses of this package (Hinton KD, DKD, PLD, OFA)
and FitNets' hint in place of Distiller's NLP objectives (its MI-α and augmentations on text).

In Lightning terms. The whole training split and the validation split are read once (before
training). Each training step evaluates the candidates due by then, so the budget is spread evenly
over the fit's ``max_epochs × batches`` steps (one a step when there are at least ``budget`` steps,
several a step otherwise); the batch itself is not used, and the outer optimiser changes nothing
(its step only counts the search's progress as ``global_step``). Each evaluation writes
``search/score`` and ``search/best_so_far`` (step = the candidate's number, from 1) and the table of
all candidates so far, ``search/candidates`` (choices, origin, score, best so far): the
``autodistiller_search`` view and the live panel draw them as they come.

``self.student`` holds, at every moment, the student of the best pipeline so far (its weights are
copied in when a candidate beats the best; the earliest wins a tie); at the end, the best
pipeline's student. The validation and test gap (``val/*``, ``test/*``) measure it. A stopped
run keeps the best of what it evaluated; a resumed one continues the same search.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ....core.batches import split_tensors
from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ..base import KDModule
from ..features import PENULTIMATE, resolve, split_names
from . import autodistiller_views  # noqa: F401  (registers the view)
from .autodistiller_evaluate import InnerSetting, evaluate_candidate, teacher_outputs
from .autodistiller_search import AXES, Candidate, SearchHistory, check_space, proposal_generator, propose, space_size

VIEWS = ("autodistiller_search", "gap", "per_class_gap", "agreement_matrix", "efficiency")


def _temperatures(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in split_names(text))
    except ValueError:
        raise ConfigError(f"temperatures must be comma-separated numbers, e.g. '1,2,4,8'; got {text!r}") from None
    bad = [v for v in values if not 1.0 <= v <= 20.0]
    if bad:
        raise ConfigError(f"temperatures {bad} are outside [1, 20]; give softening temperatures between 1 and 20")
    return values


@register("kd.autodistiller", views=VIEWS)
class AutoDistiller(KDModule):
    """Pipeline recommendation: the generate–evaluate–refine search of ADRS over Distiller's KD pipeline
    components, under a budget of evaluations (see the module docstring). ``self.student`` ends as the
    student of the best pipeline found."""

    budget = HParam(int, 10, 1, 1000, help="candidate pipelines evaluated (each a short distillation of a fresh student)")
    initial = HParam(int, 4, 1, 1000, help="random pipelines generated first; the later ones refine the best so far")
    top_k = HParam(int, 2, 1, 100, help="refine: the parent is drawn among the top_k pipelines so far")
    candidate_epochs = HParam(int, 5, 1, 1000, help="epochs over the training split that evaluate one candidate")
    candidate_batch = HParam(int, 64, 1, 100000, help="batch size of a candidate's distillation")
    losses = HParam(str, "hinton,dkd,pld,ofa", help="loss choices, comma-separated: hinton, dkd, pld, ofa")
    temperatures = HParam(str, "1,2,4,8", help="temperature choices, comma-separated, each in [1, 20]")
    intermediates = HParam(str, "none,hint", help="intermediate objective choices: none, hint (FitNets, penultimate features)")
    augments = HParam(str, "none,noise,mixup", help="augmentation choices: none, noise (Gaussian), mixup")
    hinton_alpha = HParam(float, 0.1, 0.0, 1.0, help="the weight of the hard-label CE in the hinton loss choice")
    hint_weight = HParam(float, 0.1, 0.0, 100.0, help="weight of the hint term when a candidate uses one")
    noise_std = HParam(float, 0.1, 0.0, 10.0, help="std of the noise augmentation, in units of the inputs' std")

    def build_parts(self) -> None:
        super().build_parts()
        self.space = check_space(
            {
                "loss": split_names(self.losses),
                "temperature": _temperatures(self.temperatures),
                "intermediate": split_names(self.intermediates),
                "augment": split_names(self.augments),
            }
        )
        size = space_size(self.space)
        if self.budget > size:
            raise ConfigError(
                f"budget={self.budget} is more than the {size} distinct pipelines of the search space; "
                f"lower budget to at most {size} or add choices"
            )
        if self.teacher is None:
            raise ConfigError("kd.autodistiller distils from a teacher; pass teacher=...")
        if "hint" in self.space["intermediate"]:
            resolve(self.student, PENULTIMATE, "student")
            resolve(self.teacher, PENULTIMATE, "teacher")
        self.initial_state = {k: v.detach().clone() for k, v in self.student.state_dict().items()}
        self.seed = int(torch.randint(2**31 - 1, (1,)))
        self.history = SearchHistory()
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self.teacher_out: tuple[torch.Tensor, torch.Tensor | None] | None = None  # the teacher on the training split, once

    # -- data: both splits read once, before training ---------------------------------------------
    def check_data(self, data) -> None:
        splits = {}
        for split in ("train", "val"):
            x, y = split_tensors(data, split)
            if len(x) == 0:
                raise ConfigError(f"kd.autodistiller scores candidates on the {split} split, which is empty; give it examples")
            splits[split] = (x, y.long())
        self.splits = splits

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.splits is None:
            self.check_data(self.trainer.datamodule)

    def inner_setting(self) -> InnerSetting:
        return InnerSetting(
            self.candidate_epochs,
            self.candidate_batch,
            self.lr,
            self.weight_decay,
            self.hinton_alpha,
            self.hint_weight,
            self.noise_std,
        )

    # -- the search, spread over the training steps ------------------------------------------------
    def on_train_start(self) -> None:
        super().on_train_start()
        self.automatic_optimization = False  # nothing to back-propagate: the candidates train themselves
        writer = self._run_writer()
        if writer is not None and not len(self.history):
            writer.scalar("search/budget", self.budget, step=0)
            writer.scalar("search/space_size", space_size(self.space), step=0)

    def due(self, batch_idx: int) -> int:
        """How many candidates should have been evaluated once this step ends: ``budget`` spread evenly
        over the fit's steps (one a step when the number of steps is unknown)."""
        trainer = self.trainer
        per_epoch = trainer.num_training_batches
        total = trainer.max_epochs * per_epoch if trainer.max_epochs not in (None, -1) and math.isfinite(per_epoch) else None
        if trainer.max_steps not in (None, -1):
            total = trainer.max_steps if total is None else min(total, trainer.max_steps)
        if not total:
            return min(self.budget, len(self.history) + 1)
        position = self.current_epoch * per_epoch + batch_idx if math.isfinite(per_epoch) else trainer.global_step
        return min(self.budget, math.ceil(self.budget * (position + 1) / total))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        while len(self.history) < self.due(batch_idx):
            if not self.evaluate_next():
                break
        self.optimizers().step()  # no gradients: only counts the step

    def evaluate_next(self) -> bool:
        """Propose, evaluate and record the next candidate; False when the space is exhausted."""
        k = len(self.history)
        proposal = propose(self.history, self.space, self.initial, self.top_k, proposal_generator(self.seed, k))
        if proposal is None:
            return False
        candidate, origin = proposal
        teacher = self.teacher
        device = next(self.student.parameters()).device
        train, val = ((x.to(device), y.to(device)) for x, y in (self.splits["train"], self.splits["val"]))
        if self.teacher_out is None or self.teacher_out[0].device != device:
            self.teacher_out = teacher_outputs(teacher, train[0], features="hint" in self.space["intermediate"])
        score, student = evaluate_candidate(
            candidate,
            self.student,
            self.initial_state,
            teacher,
            train,
            val,
            self.inner_setting(),
            self.candidate_seed(k),
            self.teacher_out,
        )
        best = self.history.best_index()
        self.history.record(candidate, score, origin)
        if best is None or score > self.history.scores[best]:
            self.student.load_state_dict(student.state_dict())
        self.write_candidate(k)
        return True

    def candidate_seed(self, k: int) -> int:
        """The seed of the k-th candidate's distillation (batch order, augmentations, hint regressor)."""
        return self.seed + 104729 * (k + 1)

    def best_candidate(self) -> Candidate | None:
        best = self.history.best_index()
        return None if best is None else self.history.candidates[best]

    def write_candidate(self, k: int) -> None:
        writer = self._run_writer()
        if writer is None:
            return
        writer.scalar("search/score", self.history.scores[k], step=k + 1)
        writer.scalar("search/best_so_far", self.history.best_so_far()[k], step=k + 1)
        writer.table("search/candidates", list(SearchHistory.COLUMNS), self.history.rows(), step=k + 1)
        writer.flush()

    # -- resumes: the search's state travels in the checkpoint -------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["autodistiller"] = {"seed": self.seed, "history": self.history.state()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("autodistiller")
        if state is not None:
            self.seed = int(state["seed"])
            self.history = SearchHistory.from_state(state["history"])


__all__ = ["AXES", "AutoDistiller"]
