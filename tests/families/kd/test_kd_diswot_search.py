"""DisWOT's evolutionary student search (nbdistill.families.kd.pipelines.diswot_search) on a known fitness."""

from __future__ import annotations

import random

import nbdistill as nd
from nbdistill.families.kd.pipelines.diswot_score import DisWOTScore
from nbdistill.families.kd.pipelines.diswot_search import WIDTHS, best, evolve, mlp_params, mutate


def test_mlp_params_counts_what_the_mlp_has():
    for hidden in ([], [8], [32, 16], [4, 256, 12]):
        model = nd.models.MLP(64, hidden, 10)
        assert mlp_params(64, hidden, 10) == sum(p.numel() for p in model.parameters())


def test_mutations_stay_in_the_space():
    rng = random.Random(0)
    hidden = (32,)
    for _ in range(300):
        hidden = mutate(hidden, rng, max_depth=3)
        assert 1 <= len(hidden) <= 3 and all(w in WIDTHS for w in hidden)


def _toward_sum_40(hidden):
    """A fitness whose best architectures have hidden widths summing to 40."""
    return DisWOTScore(relation=-abs(sum(hidden) - 40) / 10, semantic=-0.01 * len(hidden))


def test_the_search_keeps_the_budget_scores_each_once_and_finds_the_optimum():
    calls = []

    def fitness(hidden):
        calls.append(hidden)
        return _toward_sum_40(hidden)

    history = evolve(fitness, 64, 10, start=[8], budget=5000, population=6, generations=40, max_depth=3, seed=0)
    assert history[0].hidden == (8,) and history[0].order == 0
    assert len(calls) == len(set(calls)) == len(history)
    assert all(c.params <= 5000 and c.params == mlp_params(64, c.hidden, 10) for c in history)
    chosen = best(history)
    assert sum(chosen.hidden) == 40 and len(chosen.hidden) == 2  # 40 is no width: the best is two layers (8+32, 16+24)
    assert chosen.score == max(c.score for c in history)


def test_the_search_is_seeded():
    run = lambda seed: [c.hidden for c in evolve(_toward_sum_40, 64, 10, [8], 5000, 6, 20, 3, seed)]  # noqa: E731
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_budget_that_fits_only_the_start_evaluates_only_the_start():
    history = evolve(_toward_sum_40, 64, 10, start=[4], budget=mlp_params(64, [4], 10), population=4, generations=5)
    assert [c.hidden for c in history] == [(4,)]
