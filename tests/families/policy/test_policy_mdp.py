"""The tabular MDP (Gymnasium API, backward induction by hand, exact regret) and UCB-VI (Azar, Osband & Munos 2017)."""

from __future__ import annotations

import math

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.policy.mdp import TabularMDP, random_mdp
from nbdistill.families.policy.ucbvi import UCBVI, run_ucbvi

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors stepped in a loop: 1 thread is ~10x faster under load
F64 = {"dtype": torch.float64}


def two_state_mdp(n: int = 1) -> TabularMDP:
    """s0: a0 stays (r 0.2), a1 goes to s0 or s1 with 1/2 each (r 0); s1: a0 back to s0 (r 1), a1 stays (r 0.5). H = 2."""
    p = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]]], **F64)
    r = torch.tensor([[0.2, 0.0], [1.0, 0.5]], **F64)
    return TabularMDP(p.expand(n, 2, 2, 2), r.expand(n, 2, 2), horizon=2)


def test_backward_induction_on_a_hand_made_two_state_mdp():
    values, q = two_state_mdp().optimal_values()
    # last step: Q = r; V(s0) = 0.2, V(s1) = 1.0
    torch.testing.assert_close(q[0, 1], torch.tensor([[0.2, 0.0], [1.0, 0.5]], **F64), rtol=0, atol=1e-15)
    # first step: Q(s0) = [0.2 + 0.2, 0 + (0.2 + 1.0) / 2] = [0.4, 0.6]; Q(s1) = [1 + 0.2, 0.5 + 1.0] = [1.2, 1.5]
    torch.testing.assert_close(q[0, 0], torch.tensor([[0.4, 0.6], [1.2, 1.5]], **F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(values[0], torch.tensor([[0.6, 1.5], [0.2, 1.0], [0.0, 0.0]], **F64), rtol=0, atol=1e-15)


def test_exact_regret_of_a_policy():
    mdp = two_state_mdp()
    always_a0 = torch.zeros(1, 2, 2, dtype=torch.long)
    torch.testing.assert_close(mdp.policy_values(always_a0)[0, 0], torch.tensor([0.4, 1.2], **F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(mdp.regret(always_a0), torch.tensor([0.2], **F64), rtol=0, atol=1e-15)
    optimal = mdp.optimal_values()[1].argmax(-1)
    torch.testing.assert_close(mdp.regret(optimal), torch.zeros(1, **F64), rtol=0, atol=1e-15)


def test_playing_the_optimal_policy_returns_v_star_on_average():
    """A second, independent way: Monte Carlo returns of many copies stepped through the Gymnasium API."""
    n = 20000
    mdp = two_state_mdp(n)
    policy = mdp.optimal_values()[1].argmax(-1)
    _, info = mdp.reset(seed=0)
    state, total = info["state"], torch.zeros(n, **F64)
    for h in range(2):
        _, reward, _, _, info = mdp.step(policy[torch.arange(n), h, state])
        total += reward.double()
        state = info["state"]
    # V*(s0) = 0.6; the return is 0.2 or 1.0 with 1/2 each after a1: s.d. 0.4, 5 s.e. = 5 * 0.4 / sqrt(n)
    torch.testing.assert_close(total.mean(), torch.tensor(0.6, **F64), rtol=0, atol=5 * 0.4 / math.sqrt(n))


def test_gymnasium_api_shapes_truncation_and_seeding():
    mdp = random_mdp(4, states=3, actions=2, horizon=3, seed=1)
    obs, info = mdp.reset(seed=5)
    assert obs.shape == (4, 3) and obs.is_floating_point() and isinstance(info, dict)
    torch.testing.assert_close(obs.sum(-1), torch.ones(4), rtol=0, atol=0)  # one-hot states
    rewards = []
    for h in range(1, 4):
        out = mdp.step(torch.tensor([0, 1, 0, 1]))
        assert len(out) == 5
        obs, reward, terminated, truncated, info = out
        assert obs.shape == (4, 3) and reward.shape == (4,) and reward.is_floating_point()
        assert terminated.dtype == truncated.dtype == torch.bool and not terminated.any()
        assert bool(truncated.all()) == (h == 3)
        rewards.append(reward)
    with pytest.raises(ConfigError, match="call reset"):
        mdp.step(torch.zeros(4, dtype=torch.long))
    mdp.reset(seed=5)
    again = torch.stack([mdp.step(torch.tensor([0, 1, 0, 1]))[1] for _ in range(3)])
    torch.testing.assert_close(again, torch.stack(rewards), rtol=0, atol=0)


def test_bad_input_is_a_config_error():
    mdp = random_mdp(2, states=3, actions=2, horizon=3)
    mdp.reset(seed=0)
    with pytest.raises(ConfigError, match="action 2 of MDP 1 is out of range"):
        mdp.step(torch.tensor([0, 2]))
    with pytest.raises(ConfigError, match="probability distribution"):
        TabularMDP(torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2), horizon=2)
    with pytest.raises(ConfigError, match="episodes must be an integer"):
        UCBVI().reset(mdp, 0)


def test_ucbvi_bonus_is_the_papers_chernoff_hoeffding_term():
    mdp = two_state_mdp()
    agent = UCBVI(bonus_scale=1.0, delta=0.1)
    agent.reset(mdp, episodes=10)
    for _ in range(4):
        agent.update(torch.tensor([0]), torch.tensor([1]), torch.tensor([0.0]), torch.tensor([1]))
    log_term = math.log(5 * 2 * 2 * (10 * 2) / 0.1)  # L = ln(5 S A T / delta), T = K H
    bonus = agent.bonus()[0]
    torch.testing.assert_close(bonus[0, 1], torch.tensor(7 * 2 * log_term / math.sqrt(4), **F64), rtol=1e-12, atol=0)
    assert math.isinf(bonus[0, 0]) and math.isinf(bonus[1, 1])


def test_ucbvi_without_bonus_plans_by_backward_induction_on_the_empirical_mdp():
    """With the true model observed (each transition in proportion) and no bonus, planning gives Q*."""
    mdp = two_state_mdp()
    agent = UCBVI(bonus_scale=0.0)
    agent.reset(mdp, episodes=1)
    one = torch.tensor
    for s, a, r, nxt in ((0, 0, 0.2, 0), (0, 1, 0.0, 0), (0, 1, 0.0, 1), (1, 0, 1.0, 0), (1, 1, 0.5, 1)):
        agent.update(one([s]), one([a]), one([r], **F64), one([nxt]))
    policy = agent.plan()
    torch.testing.assert_close(agent.q, mdp.optimal_values()[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(mdp.regret(policy), torch.zeros(1, **F64), rtol=0, atol=1e-12)


def test_ucbvi_regret_per_episode_falls_and_cumulative_regret_is_sub_linear():
    mdp = random_mdp(64, states=5, actions=2, horizon=5, seed=0)
    regret = run_ucbvi(UCBVI(bonus_scale=0.01), mdp, episodes=300, seed=0)
    assert (regret >= -1e-12).all()  # exact regret is never negative
    per_episode = regret.mean(0)
    assert per_episode[-50:].mean() < 0.35 * per_episode[:50].mean()  # measured 0.71 -> 0.15
    cumulative = regret.sum(0).cumsum(0) / 64
    k = torch.arange(1, 301, **F64)
    average = cumulative / k
    assert average[-1] < 0.6 * average[99]  # R(K) / K falls between K = 100 and 300
