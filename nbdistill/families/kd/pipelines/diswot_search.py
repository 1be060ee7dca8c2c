"""DisWOT's student search: aging (regularized) evolution over MLP hidden widths and depth under a
parameter budget, with the DisWOT score as fitness.

The official code (``searcher/evo_search_nb201.py``) runs regularized evolution (Real et al.,
"Regularized Evolution for Image Classifier Architecture Search", AAAI 2019, Algorithm 1) under a
FLOPs budget: a population of random architectures; then, each cycle, a tournament of
:data:`TOURNAMENT` members drawn from the population, the best one's mutation evaluated and
appended, the oldest member removed. The answer is the best architecture of the whole history.
Here an architecture is the list of an MLP's hidden widths (each from :data:`WIDTHS`, at most
``max_depth`` of them), the budget is a parameter count, and a mutation changes one width,
inserts a layer or removes one. Everything is drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .diswot_score import DisWOTScore

#: The widths a hidden layer may take.
WIDTHS = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: Members of the population in each tournament (fewer when the population is smaller).
TOURNAMENT = 3
#: Draws before giving up on finding a new architecture within the budget.
TRIES = 200

Hidden = tuple[int, ...]


def mlp_params(in_features: int, hidden: Sequence[int], out_features: int) -> int:
    """Parameters (weights and biases) of ``nbdistill.models.MLP(in_features, hidden, out_features)``."""
    widths = [in_features, *hidden, out_features]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture: its hidden widths, parameter count, DisWOT similarities and score;
    ``order`` is when the search first evaluated it (0 for the student the user gave)."""

    hidden: Hidden
    params: int
    relation: float
    semantic: float
    score: float
    order: int


def random_hidden(rng: random.Random, max_depth: int) -> Hidden:
    return tuple(rng.choice(WIDTHS) for _ in range(rng.randint(1, max_depth)))


def mutate(hidden: Hidden, rng: random.Random, max_depth: int) -> Hidden:
    """``hidden`` with one width changed, a layer of random width inserted, or a layer removed."""
    moves = ["width"] if hidden else []
    if len(hidden) < max_depth:
        moves.append("insert")
    if len(hidden) > 1:
        moves.append("remove")
    move, layers = rng.choice(moves), list(hidden)
    if move == "width":
        i = rng.randrange(len(layers))
        layers[i] = rng.choice([w for w in WIDTHS if w != layers[i]])
    elif move == "insert":
        layers.insert(rng.randint(0, len(layers)), rng.choice(WIDTHS))
    else:
        del layers[rng.randrange(len(layers))]
    return tuple(layers)


def evolve(
    fitness: Callable[[Hidden], DisWOTScore],
    in_features: int,
    out_features: int,
    start: Sequence[int],
    budget: int,
    population: int = 8,
    generations: int = 24,
    max_depth: int = 3,
    seed: int = 0,
) -> list[Candidate]:
    """Every architecture the aging evolution evaluated, in order, the first being ``start`` (the
    user's student, kept even if its depth exceeds ``max_depth``). Only architectures of at most
    ``budget`` parameters are evaluated; each is scored once (``fitness(hidden)``)."""
    rng = random.Random(seed)
    seen: dict[Hidden, Candidate] = {}

    def evaluate(hidden: Hidden) -> Candidate:
        if hidden not in seen:
            s = fitness(hidden)
            seen[hidden] = Candidate(
                hidden, mlp_params(in_features, hidden, out_features), s.relation, s.semantic, s.score, len(seen)
            )
        return seen[hidden]

    def fits(hidden: Hidden) -> bool:
        return mlp_params(in_features, hidden, out_features) <= budget

    pool: deque[Candidate] = deque([evaluate(tuple(start))])
    for _ in range(TRIES * population):
        if len(pool) >= population:
            break
        hidden = random_hidden(rng, max_depth)
        if fits(hidden) and hidden not in seen:
            pool.append(evaluate(hidden))
    for _ in range(generations):
        parent = max(rng.sample(list(pool), min(TOURNAMENT, len(pool))), key=lambda c: c.score)
        child = None
        for _ in range(TRIES):
            hidden = mutate(parent.hidden, rng, max_depth)
            if fits(hidden) and hidden not in seen:
                child = hidden
                break
        if child is None:  # the budget leaves no new architecture near this parent
            continue
        pool.append(evaluate(child))
        if len(pool) > population:
            pool.popleft()
    return list(seen.values())


def best(candidates: Sequence[Candidate]) -> Candidate:
    """The highest-scoring candidate (ties: fewer parameters, then the earlier)."""
    return max(candidates, key=lambda c: (c.score, -c.params, -c.order))
