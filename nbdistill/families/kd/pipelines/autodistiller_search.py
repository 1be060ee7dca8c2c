r"""The search of ``kd.autodistiller``: a KD pipeline as a point of a small discrete space, the
generate–evaluate–refine rule that proposes the next one, and the best-so-far bookkeeping.

A pipeline (:class:`Candidate`) is one choice per axis of the space (:data:`DEFAULT_SPACE`): the
distillation loss on the logits, its temperature, the intermediate objective and the input
augmentation. The search (the loop of ADRS, "Barbarians at the Gate: How AI is Upending Systems
Research", Cheng et al., 2025, with a seeded random generator in place of its LLM generator) is

1. **generate**: the first ``initial`` candidates are drawn uniformly among the pipelines not yet
   evaluated (the initial pool);
2. **evaluate**: the evaluator scores each (in ``kd.autodistiller``: the validation accuracy of a
   fresh student distilled with it; here only its score is recorded, :class:`SearchHistory`);
3. **refine**: every later candidate is a one-choice mutation (:func:`mutate`) of a parent drawn
   uniformly among the ``top_k`` best pipelines so far, a mutation never evaluated before; when
   every neighbour of every top-k parent has been evaluated, a random unevaluated pipeline
   (a restart) is drawn instead.

Until the budget is spent. Everything is a function of the history and of a seeded
``torch.Generator``, so a search is reproducible and a resumed one continues as it would have.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import torch

from ....core.errors import ConfigError

#: The losses a candidate may use (each in :mod:`nbdistill.families.kd.losses`, none with heads).
LOSSES = ("hinton", "dkd", "pld", "ofa")
#: The intermediate objectives: none, or FitNets' hint on the penultimate features through a linear regressor.
INTERMEDIATES = ("none", "hint")
#: The input augmentations: none, Gaussian noise, mixup.
AUGMENTS = ("none", "noise", "mixup")

#: The default search space: ``4 × 4 × 2 × 3 = 96`` pipelines.
DEFAULT_SPACE: dict[str, tuple] = {
    "loss": LOSSES,
    "temperature": (1.0, 2.0, 4.0, 8.0),
    "intermediate": INTERMEDIATES,
    "augment": AUGMENTS,
}


@dataclass(frozen=True, order=True)
class Candidate:
    """One KD pipeline: a choice on every axis of the search space."""

    loss: str
    temperature: float
    intermediate: str
    augment: str

    @property
    def choices(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    def label(self) -> str:
        """A short name, e.g. ``"dkd T=4 +hint +mixup"``."""
        parts = [f"{self.loss} T={self.temperature:g}"]
        parts += [f"+{v}" for v in (self.intermediate, self.augment) if v != "none"]
        return " ".join(parts)

    def changed(self, other: Candidate) -> list[str]:
        """The axes on which ``other`` makes another choice."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


AXES = tuple(f.name for f in fields(Candidate))


def check_space(space: dict[str, tuple]) -> dict[str, tuple]:
    """``space`` with its choices deduplicated (order kept); a :class:`ConfigError` for an axis that is
    missing, empty, or that has a choice the pipeline cannot run."""
    allowed = {"loss": LOSSES, "intermediate": INTERMEDIATES, "augment": AUGMENTS}
    checked: dict[str, tuple] = {}
    for axis in AXES:
        values = tuple(dict.fromkeys(space.get(axis, ())))
        if not values:
            raise ConfigError(f"the search space has no {axis} choice; give at least one")
        if axis in allowed:
            bad = [v for v in values if v not in allowed[axis]]
            if bad:
                raise ConfigError(f"unknown {axis} choice(s) {bad}; choose among {list(allowed[axis])}")
        checked[axis] = values
    return checked


def space_size(space: dict[str, tuple]) -> int:
    return len(list(itertools.product(*(space[a] for a in AXES))))


def all_candidates(space: dict[str, tuple]) -> list[Candidate]:
    """Every pipeline of the space, in a fixed order."""
    return [Candidate(*choice) for choice in itertools.product(*(space[a] for a in AXES))]


def _pick(items: list, g: torch.Generator):
    return items[int(torch.randint(len(items), (1,), generator=g))]


def random_candidate(space: dict[str, tuple], g: torch.Generator, exclude: set[Candidate] = frozenset()) -> Candidate | None:
    """A pipeline drawn uniformly among those of ``space`` not in ``exclude`` (None when there is none)."""
    left = [c for c in all_candidates(space) if c not in exclude]
    return _pick(left, g) if left else None


def neighbours(parent: Candidate, space: dict[str, tuple]) -> list[Candidate]:
    """The pipelines that differ from ``parent`` in exactly one choice, in a fixed order."""
    out = []
    for axis in AXES:
        for value in space[axis]:
            if value != getattr(parent, axis):
                out.append(Candidate(**{**{a: getattr(parent, a) for a in AXES}, axis: value}))
    return out


def mutate(
    parent: Candidate, space: dict[str, tuple], g: torch.Generator, exclude: set[Candidate] = frozenset()
) -> Candidate | None:
    """The refine step: ``parent`` with ONE choice changed, drawn uniformly among its neighbours not in
    ``exclude`` (None when every neighbour is excluded)."""
    left = [c for c in neighbours(parent, space) if c not in exclude]
    return _pick(left, g) if left else None


@dataclass
class SearchHistory:
    """The evaluated pipelines in the order of evaluation, with their scores and origins
    (``"initial"``, ``"refine #j"`` for a mutation of the j-th evaluated candidate, 1-based, or ``"restart"``)."""

    candidates: list[Candidate] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.candidates)

    def record(self, candidate: Candidate, score: float, origin: str) -> None:
        self.candidates.append(candidate)
        self.scores.append(float(score))
        self.origins.append(origin)

    def best_so_far(self) -> list[float]:
        """The running maximum of the scores: entry k is the best score among the first k + 1."""
        return list(itertools.accumulate(self.scores, max))

    def best_index(self) -> int | None:
        """The index of the best pipeline (the earliest among equal scores), None before any."""
        if not self.scores:
            return None
        return max(range(len(self.scores)), key=lambda i: (self.scores[i], -i))

    def ranked(self) -> list[int]:
        """The indices by score, best first (earlier first among equal scores)."""
        return sorted(range(len(self.scores)), key=lambda i: (-self.scores[i], i))

    def rows(self) -> list[list]:
        """The table of all candidates: number, choices, origin, score, best so far."""
        best = self.best_so_far()
        return [
            [k + 1, *c.choices, self.origins[k], round(self.scores[k], 6), round(best[k], 6)]
            for k, c in enumerate(self.candidates)
        ]

    COLUMNS = ("#", *AXES, "origin", "score", "best so far")

    def state(self) -> dict:
        return {
            "candidates": [list(c.choices) for c in self.candidates],
            "scores": list(self.scores),
            "origins": list(self.origins),
        }

    @classmethod
    def from_state(cls, state: dict) -> SearchHistory:
        return cls([Candidate(*c) for c in state["candidates"]], list(state["scores"]), list(state["origins"]))


def propose(
    history: SearchHistory, space: dict[str, tuple], initial: int, top_k: int, g: torch.Generator
) -> tuple[Candidate, str] | None:
    """The next pipeline to evaluate and its origin (see the module docstring); None when every
    pipeline of the space has been evaluated."""
    seen = set(history.candidates)
    if len(history) < initial:
        c = random_candidate(space, g, seen)
        return None if c is None else (c, "initial")
    top = history.ranked()[:top_k]
    parents = [top[i] for i in torch.randperm(len(top), generator=g).tolist()]  # a uniform parent first, then the others
    for j in parents:
        child = mutate(history.candidates[j], space, g, seen)
        if child is not None:
            return child, f"refine #{j + 1}"
    c = random_candidate(space, g, seen)
    return None if c is None else (c, "restart")


def proposal_generator(seed: int, k: int) -> torch.Generator:
    """The random stream of the k-th proposal: a function of the search's seed and k (resumes are exact)."""
    return torch.Generator().manual_seed((int(seed) + 7919 * int(k)) % (2**63 - 1))
