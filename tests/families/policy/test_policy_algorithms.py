"""The teacher algorithms: UCB's and LinUCB's bonuses by hand, Thompson's posterior, the Gamma sampler, regret basics."""

from __future__ import annotations

import math

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.policy.algorithms import UCB, Greedy, LinUCB, Oracle, Random, Thompson, _gamma, make_algorithm
from nbdistill.families.policy.envs import BernoulliBandit, GaussianBandit, LinearBandit
from nbdistill.families.policy.rollout import run_algorithm

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors stepped in a loop: 1 thread is ~10x faster under load
F64 = {"dtype": torch.float64}


def feed(algorithm, env, actions, rewards):
    """Reset ``algorithm`` on ``env`` and tell it a hand-made history (one task)."""
    algorithm.reset(env)
    for a, r in zip(actions, rewards):
        algorithm.update(torch.tensor([a]), torch.tensor([float(r)]))
    return algorithm


def test_ucb_bonus_is_infinite_unpulled_then_c_sqrt_2_ln_t_over_n():
    env = BernoulliBandit(torch.tensor([[0.3, 0.6, 0.5]]), horizon=10)
    ucb = feed(UCB(c=0.5), env, [0, 0, 1, 0], [1, 0, 1, 1])
    bonus = ucb.bonus()[0].double()
    assert math.isinf(bonus[2]) and bonus[2] > 0  # arm 2 never pulled
    t = 4  # 4 pulls so far: arm 0 three times, arm 1 once
    expected = torch.tensor([0.5 * math.sqrt(2 * math.log(t) / 3), 0.5 * math.sqrt(2 * math.log(t) / 1)], **F64)
    torch.testing.assert_close(bonus[:2], expected, rtol=1e-6, atol=0)
    assert ucb.act(torch.Generator())[0] == 2  # an unpulled arm first
    torch.testing.assert_close(ucb.means[0, :2].double(), torch.tensor([2 / 3, 1.0], **F64), rtol=1e-6, atol=0)


def test_ucb_bonus_decreases_as_the_arm_is_pulled():
    env = BernoulliBandit(torch.tensor([[0.3, 0.6]]), horizon=50)
    ucb = feed(UCB(), env, [0, 1], [0, 0])
    previous = ucb.bonus()[0, 1]
    for _ in range(20):  # pull arm 1 again and again: t and n grow together, and ln(t) / n falls
        ucb.update(torch.tensor([1]), torch.tensor([0.0]))
        now = ucb.bonus()[0, 1]
        assert now < previous
        previous = now


def test_linucb_bonus_shrinks_along_an_observed_direction_only():
    features = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], **F64)
    env = LinearBandit(features, torch.tensor([[0.5, 0.2]], **F64), noise=0.0, horizon=10)
    lin = LinUCB(alpha=2.0, ridge=1.0)
    lin.reset(env)
    torch.testing.assert_close(lin.bonus()[0], torch.tensor([2.0, 2.0], **F64), rtol=1e-12, atol=0)
    for n in range(1, 5):  # A = (1 + n) e1 e1^T + e2 e2^T: bonus alpha / sqrt(1 + n) along e1, alpha along e2
        lin.update(torch.tensor([0]), torch.tensor([0.5], **F64))
        torch.testing.assert_close(lin.bonus()[0], torch.tensor([2.0 / math.sqrt(1 + n), 2.0], **F64), rtol=1e-12, atol=0)
    # ridge estimate along e1: sum r x / (1 + n) = 4 * 0.5 / 5
    torch.testing.assert_close(lin.estimate()[0], torch.tensor([0.4, 0.0], **F64), rtol=1e-12, atol=1e-15)


def test_linucb_bonus_by_hand_with_more_arms_than_dimensions():
    g = torch.Generator().manual_seed(0)
    env = LinearBandit(torch.randn(3, 5, 2, generator=g, **F64), torch.randn(3, 2, generator=g, **F64), noise=0.1, horizon=10)
    lin = LinUCB(alpha=1.5)
    lin.reset(env)
    for a in ([0, 1, 2], [4, 4, 3], [1, 0, 0]):
        lin.update(torch.tensor(a), torch.randn(3, generator=g, **F64))
    for i in range(3):  # alpha sqrt(x^T A^-1 x), A^-1 by an explicit inverse
        inverse = torch.linalg.inv(lin.gram[i])
        expected = torch.stack([1.5 * (x @ inverse @ x).sqrt() for x in env.features[i]])
        torch.testing.assert_close(lin.bonus()[i], expected, rtol=1e-10, atol=0)


def test_linucb_refuses_a_bandit_without_features():
    with pytest.raises(ConfigError, match="LinUCB plays linear bandits"):
        LinUCB().reset(BernoulliBandit(torch.tensor([[0.3, 0.6]]), horizon=5))


def test_thompson_beta_posterior_after_a_hand_made_history():
    env = BernoulliBandit(torch.tensor([[0.3, 0.6, 0.5]]), horizon=10)
    ts = feed(Thompson(), env, [0, 0, 1, 0, 1], [1, 0, 1, 1, 1])
    alpha, beta = ts.posterior()
    # arm 0: 2 successes, 1 failure; arm 1: 2 successes; arm 2: nothing -> Beta(1 + S, 1 + F)
    torch.testing.assert_close(alpha[0], torch.tensor([3.0, 3.0, 1.0]), rtol=0, atol=0)
    torch.testing.assert_close(beta[0], torch.tensor([2.0, 1.0, 1.0]), rtol=0, atol=0)
    torch.testing.assert_close(ts.estimate()[0], torch.tensor([3 / 5, 3 / 4, 1 / 2]), rtol=1e-6, atol=0)


def test_thompson_gaussian_posterior_is_the_conjugate_normal():
    env = GaussianBandit(torch.tensor([[0.0, 1.0]]), sigma=2.0, horizon=10)
    ts = feed(Thompson(prior_std=1.0), env, [1, 1, 1], [1.0, 2.0, 0.0])
    mean, std = ts.posterior()
    precision = 1 / 1.0**2 + 3 / 2.0**2  # prior precision + n / sigma^2
    torch.testing.assert_close(mean[0], torch.tensor([0.0, (3.0 / 4.0) / precision]), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(std[0], torch.tensor([1.0, precision**-0.5]), rtol=1e-6, atol=0)


def test_thompson_draws_follow_the_beta_posterior():
    """With Beta(3, 1) against Beta(1, 3), arm 0 is chosen when its draw X beats arm 1's Y: P(X > Y) by quadrature."""
    n = 40000
    env = BernoulliBandit(torch.tensor([[0.5, 0.5]]).repeat(n, 1), horizon=10)
    ts = Thompson()
    ts.reset(env)
    for a, r in ((0, 1), (0, 1), (1, 0), (1, 0)):
        ts.update(torch.full((n,), a), torch.full((n,), float(r)))
    share = (ts.act(torch.Generator().manual_seed(0)) == 0).double().mean()
    # P(X > Y) for X ~ Beta(3, 1) (density 3x^2), Y ~ Beta(1, 3) (cdf 1 - (1 - x)^3): int_0^1 3x^2 (1 - (1 - x)^3) dx
    x = torch.linspace(0, 1, 200001, **F64)
    exact = torch.trapezoid(3 * x**2 * (1 - (1 - x) ** 3), x)
    torch.testing.assert_close(share, exact, rtol=0, atol=5 * 0.5 / n**0.5)  # 5 s.e. of a proportion


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 12.0])
def test_gamma_sampler_moments_match_torch_gamma(shape):
    n = 50000
    draws = _gamma(torch.full((n,), shape, **F64), torch.Generator().manual_seed(1))
    assert (draws > 0).all()
    reference = torch.distributions.Gamma(torch.tensor(shape, **F64), torch.tensor(1.0, **F64))
    mean, var = reference.mean, reference.variance  # both equal the shape k for Gamma(k, 1)
    # standard errors: of the mean sqrt(k / n); of the variance k sqrt((2 + 6 / k) / n) (excess kurtosis 6 / k)
    torch.testing.assert_close(draws.mean(), mean, rtol=0, atol=5 * math.sqrt(shape / n))
    torch.testing.assert_close(draws.var(), var, rtol=0, atol=5 * shape * math.sqrt((2 + 6 / shape) / n))


def bandits(n=64, horizon=200):
    g = torch.Generator().manual_seed(0)
    return BernoulliBandit(torch.rand(n, 4, generator=g), horizon)


def test_oracle_has_zero_regret():
    env = bandits()
    trajectory = run_algorithm(Oracle(), env, 200, torch.Generator().manual_seed(0))
    torch.testing.assert_close(trajectory.regret, torch.zeros_like(trajectory.regret), rtol=0, atol=0)
    assert torch.equal(trajectory.actions, env.optimal_action()[:, None].expand(-1, 200))


@pytest.mark.parametrize("name", ["random", "greedy", "ucb", "thompson", "oracle"])
def test_cumulative_regret_is_non_decreasing_in_t(name):
    trajectory = run_algorithm(make_algorithm(name), bandits(), 200, torch.Generator().manual_seed(0))
    cumulative = trajectory.cumulative_regret()
    assert (cumulative.diff(dim=-1) >= 0).all()
    assert (trajectory.regret >= 0).all()


def test_learning_beats_random():
    env = bandits(n=256, horizon=300)
    regret = {
        a.name: run_algorithm(a, env, 300, torch.Generator().manual_seed(0)).cumulative_regret()[:, -1].mean()
        for a in (Random(), UCB(), Thompson())
    }
    assert regret["ucb"] < 0.5 * regret["random"] and regret["thompson"] < 0.5 * regret["random"]


def test_greedy_and_ucb_break_ties_to_the_lowest_index():
    env = BernoulliBandit(torch.tensor([[0.5, 0.5, 0.5]]), horizon=10)
    g = torch.Generator()
    greedy, ucb = Greedy(), UCB()
    for algorithm in (greedy, ucb):
        algorithm.reset(env)
    assert greedy.act(g).item() == 0 and ucb.act(g).item() == 0  # all unpulled: the first one
    for algorithm in (greedy, ucb):
        feed(algorithm, env, [0, 1, 2], [1, 1, 1])  # equal means and equal pulls
    assert greedy.act(g).item() == 0 and ucb.act(g).item() == 0
    feed(greedy, env, [0, 1], [1, 0])  # arm 2 never pulled comes first
    assert greedy.act(g).item() == 2
    feed(greedy, env, [0, 1, 2], [0, 1, 1])  # arms 1 and 2 tie at the top
    assert greedy.act(g).item() == 1


def test_make_algorithm_refuses_unknown_names_and_bad_constants():
    with pytest.raises(ConfigError, match="unknown bandit algorithm 'ucb2'"):
        make_algorithm("ucb2")
    with pytest.raises(ConfigError, match="c must be at least 0"):
        UCB(c=-1)
    with pytest.raises(ConfigError, match="epsilon must lie in"):
        Greedy(epsilon=1.5)
