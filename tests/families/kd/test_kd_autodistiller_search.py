"""kd.autodistiller's search: the candidate encoding, the refine rule (one choice changed), the
best-so-far bookkeeping and the determinism of a seeded search."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.autodistiller_search import (
    AXES,
    DEFAULT_SPACE,
    Candidate,
    SearchHistory,
    all_candidates,
    check_space,
    mutate,
    neighbours,
    proposal_generator,
    propose,
    space_size,
)


def fake_score(c: Candidate) -> float:
    """A deterministic evaluator with a unique optimum: hinton, T=4, hint, mixup."""
    return (
        {"hinton": 0.3, "dkd": 0.2, "pld": 0.1, "ofa": 0.0}[c.loss]
        + 0.1 * (c.temperature == 4.0)
        + 0.05 * (c.intermediate == "hint")
        + {"none": 0.0, "noise": 0.01, "mixup": 0.02}[c.augment]
    )


def run_search(seed: int, budget: int, initial: int = 3, top_k: int = 2, space=DEFAULT_SPACE) -> SearchHistory:
    history = SearchHistory()
    for k in range(budget):
        proposal = propose(history, space, initial, top_k, proposal_generator(seed, k))
        if proposal is None:
            break
        history.record(proposal[0], fake_score(proposal[0]), proposal[1])
    return history


def test_space_encoding():
    assert space_size(DEFAULT_SPACE) == 4 * 4 * 2 * 3 == len(set(all_candidates(DEFAULT_SPACE)))
    c = Candidate("dkd", 4.0, "hint", "mixup")
    assert c.choices == ("dkd", 4.0, "hint", "mixup") and c.label() == "dkd T=4 +hint +mixup"
    assert Candidate("pld", 2.0, "none", "none").label() == "pld T=2"
    assert c.changed(Candidate("dkd", 1.0, "hint", "none")) == ["temperature", "augment"]


def test_refine_changes_exactly_one_choice():
    parent = Candidate("hinton", 4.0, "none", "noise")
    # every neighbour: one axis changed, each other choice of each axis once (3 + 3 + 1 + 2)
    ns = neighbours(parent, DEFAULT_SPACE)
    assert len(ns) == len(set(ns)) == 9 and all(len(parent.changed(n)) == 1 for n in ns)
    for seed in range(50):
        child = mutate(parent, DEFAULT_SPACE, torch.Generator().manual_seed(seed))
        assert len(parent.changed(child)) == 1
    # excluded neighbours are never proposed; none left -> None
    keep = ns[4]
    assert all(mutate(parent, DEFAULT_SPACE, torch.Generator().manual_seed(s), set(ns) - {keep}) == keep for s in range(10))
    assert mutate(parent, DEFAULT_SPACE, torch.Generator().manual_seed(0), set(ns)) is None


def test_search_refines_one_choice_of_a_top_parent():
    history = run_search(seed=3, budget=25, initial=4, top_k=2)
    assert history.origins[:4] == ["initial"] * 4
    assert len(set(history.candidates)) == len(history)  # never the same pipeline twice
    for k in range(4, len(history)):
        origin = history.origins[k]
        assert origin.startswith("refine #"), origin
        j = int(origin.removeprefix("refine #")) - 1
        assert j < k and len(history.candidates[j].changed(history.candidates[k])) == 1
        # the parent was among the top 2 of the history before candidate k
        before = SearchHistory(history.candidates[:k], history.scores[:k], history.origins[:k])
        assert j in before.ranked()[:2]


def test_best_so_far_is_the_running_max():
    h = SearchHistory()
    scores = [0.5, 0.7, 0.6, 0.9, 0.9, 0.1]
    for i, s in enumerate(scores):
        h.record(all_candidates(DEFAULT_SPACE)[i], s, "initial")
    assert h.best_so_far() == [0.5, 0.7, 0.7, 0.9, 0.9, 0.9]  # by hand
    assert h.best_so_far() == [max(scores[: k + 1]) for k in range(len(scores))]
    curve = run_search(seed=0, budget=30).best_so_far()
    assert all(a <= b for a, b in zip(curve, curve[1:]))
    assert h.best_index() == 3  # the earliest of the two 0.9s
    assert h.ranked()[:3] == [3, 4, 1]
    assert SearchHistory().best_index() is None and SearchHistory().best_so_far() == []
    rows = h.rows()
    assert len(rows) == 6 and rows[2][0] == 3 and rows[2][-2:] == [0.6, 0.7] and len(rows[0]) == len(SearchHistory.COLUMNS)


def test_search_is_deterministic_under_a_seed_and_finds_the_optimum():
    a, b = run_search(seed=7, budget=20), run_search(seed=7, budget=20)
    assert a.candidates == b.candidates and a.scores == b.scores and a.origins == b.origins
    assert run_search(seed=8, budget=20).candidates != a.candidates
    # the hill climb reaches the unique optimum of the fake evaluator well within the space
    assert a.candidates[a.best_index()] == Candidate("hinton", 4.0, "hint", "mixup")
    # a resumed search (history restored from its state) continues identically
    head = SearchHistory.from_state(run_search(seed=7, budget=8).state())
    for k in range(8, 20):
        c, origin = propose(head, DEFAULT_SPACE, 3, 2, proposal_generator(7, k))
        head.record(c, fake_score(c), origin)
    assert head.candidates == a.candidates


def test_exhausting_a_space_restarts_then_stops():
    space = {"loss": ("hinton", "dkd"), "temperature": (1.0, 4.0), "intermediate": ("none",), "augment": ("none",)}
    history = run_search(seed=1, budget=10, initial=1, top_k=1, space=space)
    assert len(history) == 4 and set(history.candidates) == set(all_candidates(space))


def test_bad_spaces_are_refused():
    with pytest.raises(ConfigError, match=r"unknown loss choice\(s\) \['kl'\]; choose among"):
        check_space({**DEFAULT_SPACE, "loss": ("hinton", "kl")})
    with pytest.raises(ConfigError, match="the search space has no augment choice; give at least one"):
        check_space({**DEFAULT_SPACE, "augment": ()})
    assert check_space({**DEFAULT_SPACE, "loss": ("dkd", "dkd")})["loss"] == ("dkd",)
    assert tuple(check_space(DEFAULT_SPACE)) == AXES
