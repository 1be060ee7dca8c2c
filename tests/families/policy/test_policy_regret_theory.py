"""The teachers' regret against bandit theory, on 2-armed Bernoulli bandits (EVOLvE's large gap: means 0.75 and 0.25).

- UCB1 (Auer, Cesa-Bianchi & Fischer 2002, Theorem 1): ``E R(T) <= 8 ln T / Delta + (1 + pi^2 / 3) Delta``, and
  every consistent algorithm has ``R(T) / ln T -> >= Delta / KL(mu_2, mu_1)`` (Lai & Robbins 1985): the regret
  grows like ``log T``;
- greedy (no exploration) locks onto the worse arm with a positive probability (both first pulls give the
  worse arm a higher estimate), so its regret can grow linearly;
- Thompson sampling is asymptotically optimal (Kaufmann, Korda & Munos 2012; Agrawal & Goyal 2013): its regret
  stays within a constant factor of UCB's (smaller, in fact: ``Delta / KL`` per ``ln T`` against UCB1's ``~2 / Delta``).

One run of ``T = 10^4`` steps on ``N`` tasks at once gives ``R(T)`` at every ``T`` of a log-spaced grid from
``10^2`` to ``10^4``; the seeds are fixed, so the numbers below are deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from nbdistill.families.policy.algorithms import UCB, Greedy, Thompson
from nbdistill.families.policy.envs import BernoulliBandit
from nbdistill.families.policy.rollout import run_algorithm

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors stepped in a loop: 1 thread is ~10x faster under load
TASKS, HORIZON, GAP = 200, 10_000, 0.5
GRID = torch.logspace(2, 4, 9).round().long()  # T = 100, 178, 316, ..., 10000
HIGH, LOW = 0.5 + GAP / 2, 0.5 - GAP / 2
GREEDY_HORIZON = 2000  # greedy's linear growth shows well before 10^4; the shorter run saves a third of the time
GREEDY_GRID = GRID[GRID <= GREEDY_HORIZON]


def kl_bernoulli(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def measure() -> dict[str, torch.Tensor]:
    """Mean cumulative regret ``R(T)`` over the tasks at the grid's ``T``, and its standard error, per algorithm."""
    means = torch.tensor([[HIGH, LOW], [LOW, HIGH]], dtype=torch.float64).repeat(TASKS // 2, 1)  # the best arm first or second
    out = {}
    for algorithm, horizon, grid in (
        (UCB(c=1.0), HORIZON, GRID),
        (Thompson(), HORIZON, GRID),
        (Greedy(), GREEDY_HORIZON, GREEDY_GRID),
    ):
        env = BernoulliBandit(means, horizon)
        cumulative = run_algorithm(algorithm, env, horizon, torch.Generator().manual_seed(0), seed=1).cumulative_regret()
        at = cumulative[:, grid - 1].double()
        out[algorithm.name] = at.mean(0)
        out[algorithm.name + "_se"] = at.std(0) / TASKS**0.5
        out[algorithm.name + "_late_share_worse"] = (cumulative[:, -1] - cumulative[:, horizon // 2]) / (GAP * (horizon // 2 - 1))
    return out


@pytest.fixture(scope="module")
def regret(one_torch_thread) -> dict[str, torch.Tensor]:
    return measure()


def fit_error(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Least-squares ``y = a + b x``: the slope ``b`` and the root-mean-square residual."""
    design = torch.stack([torch.ones_like(x), x], 1)
    coef = torch.linalg.lstsq(design, y[:, None]).solution[:, 0]
    return float(coef[1]), float((design @ coef - y).pow(2).mean().sqrt())


def test_ucb_regret_grows_like_log_t(regret):
    r, t = regret["ucb"], GRID.double()
    slope, log_rms = fit_error(t.log(), r)
    _, lin_rms = fit_error(t, r)
    assert log_rms < 0.25 * lin_rms  # R = a + b ln T explains the curve far better than a + b T
    per_step = r / t
    assert per_step[-1] < 0.25 * per_step[0]  # R(T) / T falls: sub-linear
    lai_robbins = GAP / kl_bernoulli(LOW, HIGH)  # 2.47 per unit of ln T
    assert lai_robbins < slope < 8 / GAP  # between the lower bound's rate and UCB1's upper bound's
    auer = 8 * t.log() / GAP + (1 + math.pi**2 / 3) * GAP
    assert (r < auer).all()  # Auer et al.'s finite-time bound at every T


def test_greedy_regret_can_grow_linearly(regret):
    r, t = regret["greedy"], GREEDY_GRID.double()
    _, log_rms = fit_error(t.log(), r)
    _, lin_rms = fit_error(t, r)
    assert lin_rms < log_rms  # linear in T fits better than log T
    assert (r / t > 0.02).all()  # R(T) / T stays bounded below: a share of tasks never leaves the worse arm
    locked = regret["greedy_late_share_worse"] > 0.99  # the worse arm in (almost) all of the second half
    # P(lock) = P(best arm's first pull 0, worse's 1) + P(both 0) / 2 (the tie goes to arm 0, the worse arm in half the
    # tasks, which keeps the lead once it pays 1) = 0.25 * 0.25 + 0.25 * 0.75 / 2 = 0.156; measured 0.155
    assert 0.05 < locked.double().mean() < 0.5
    assert r[-1] > 3 * regret["ucb"][len(GREEDY_GRID) - 1]  # measured 138 against 21.7 at T = 1778


def test_thompson_stays_within_a_constant_factor_of_ucb(regret):
    ratio = regret["thompson"] / regret["ucb"]
    assert ((ratio > 0.1) & (ratio < 1.5)).all()
    r, t = regret["thompson"], GRID.double()
    _, log_rms = fit_error(t.log(), r)
    _, lin_rms = fit_error(t, r)
    assert log_rms < 0.25 * lin_rms  # Thompson's regret is logarithmic too
    assert r[-1] < regret["ucb"][-1]  # and smaller than UCB1's at T = 10^4 (asymptotic optimality)


def test_the_averages_are_precise_enough_to_tell(regret):
    """The standard errors at T = 10^4 are small against the gaps the tests above rely on."""
    assert regret["ucb_se"][-1] < 0.1 * regret["ucb"][-1]
    assert regret["thompson_se"][-1] < 0.2 * regret["thompson"][-1]
