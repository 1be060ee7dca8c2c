"""The vectorised bandit environments: the Gymnasium API, reward means, PlainEnvs over plain envs, bad actions."""

from __future__ import annotations

import random

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.policy.algorithms import UCB
from nbdistill.families.policy.envs import BernoulliBandit, GaussianBandit, LinearBandit, PlainEnvs
from nbdistill.families.policy.rollout import run_algorithm

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors stepped in a loop: 1 thread is ~10x faster under load
F64 = {"dtype": torch.float64}


def bernoulli(n=3, horizon=4):
    return BernoulliBandit(torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3], [0.5, 0.5, 0.6]])[:n], horizon)


def gaussian(horizon=4):
    return GaussianBandit(torch.tensor([[0.0, 1.0], [-2.0, 0.5]]), sigma=0.5, horizon=horizon)


def linear(horizon=4):
    g = torch.Generator().manual_seed(0)
    return LinearBandit(torch.randn(3, 4, 2, generator=g), torch.randn(3, 2, generator=g), noise=0.3, horizon=horizon)


class PlainBandit:
    """A single, non-vectorised Gymnasium-style Bernoulli bandit written the plain way (Python numbers)."""

    class Space:
        def __init__(self, n):
            self.n = n

    def __init__(self, means, horizon):
        self.means, self.horizon = list(means), horizon
        self.action_space = self.Space(len(means))
        self.rng = random.Random()
        self.t = 0

    def reset(self, seed=None):
        if seed is not None:
            self.rng.seed(seed)
        self.t = 0
        return None, {}

    def step(self, action: int):
        self.t += 1
        reward = 1.0 if self.rng.random() < self.means[action] else 0.0
        return None, reward, False, self.t >= self.horizon, {}

    def expected_rewards(self):
        return self.means


ENVS = {
    "bernoulli": bernoulli,
    "gaussian": gaussian,
    "linear": linear,
    "plain": lambda horizon=4: PlainEnvs([PlainBandit([0.2, 0.8], horizon), PlainBandit([0.6, 0.3], horizon)]),
}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_gymnasium_api_shapes_dtypes_and_truncation_at_the_horizon(name):
    env = ENVS[name](horizon=4)
    n, k = env.num_envs, env.num_actions
    obs, info = env.reset(seed=0)
    assert obs.shape == (n, env.obs_dim) and obs.is_floating_point()
    assert isinstance(info, dict) and info["optimal_action"].shape == (n,)
    for t in range(1, env.horizon + 1):
        out = env.step(torch.full((n,), t % k, dtype=torch.long))
        assert len(out) == 5
        obs, reward, terminated, truncated, info = out
        assert obs.shape == (n, env.obs_dim) and obs.is_floating_point()
        assert reward.shape == (n,) and reward.is_floating_point()
        assert terminated.shape == truncated.shape == (n,)
        assert terminated.dtype == truncated.dtype == torch.bool
        assert not terminated.any()
        assert bool(truncated.all()) == (t == env.horizon)  # truncated exactly at the horizon
        assert info["regret"].shape == (n,) and info["optimal_action"].shape == (n,)
        assert (info["regret"] >= 0).all()
    assert env.expected_rewards().shape == (n, k)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_the_same_seed_gives_the_same_rewards(name):
    env = ENVS[name](horizon=20)
    actions = torch.arange(20)[:, None].expand(20, env.num_envs) % env.num_actions

    def play(seed):
        env.reset(seed=seed)
        return torch.stack([env.step(a)[1] for a in actions])

    first, again, other = play(3), play(3), play(4)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert (first != other).any()  # another seed, other rewards (20 x N draws)


def test_regret_and_optimal_action_are_the_gaps_to_the_best_arm():
    env = bernoulli()
    env.reset(seed=0)
    _, _, _, _, info = env.step(torch.tensor([0, 0, 2]))
    torch.testing.assert_close(info["regret"], torch.tensor([0.8, 0.0, 0.0]), rtol=0, atol=1e-6)
    assert info["optimal_action"].tolist() == [1, 0, 2]


def mean_rewards(make, draws):
    """``[N, K]`` every arm's average reward over ``draws`` copies of every task (rows repeated, one step an arm)."""
    env = make(draws)
    env.reset(seed=0)
    n = env.num_envs // draws
    out = torch.zeros(n, env.num_actions, **F64)
    for a in range(env.num_actions):
        out[:, a] = env.step(torch.full((env.num_envs,), a, dtype=torch.long))[1].double().reshape(draws, n).mean(0)
    return env, out


def test_bernoulli_reward_means_match_expected_rewards():
    means, draws = bernoulli().expected_rewards(), 20000
    env, got = mean_rewards(lambda r: BernoulliBandit(means.repeat(r, 1), horizon=5), draws)
    # 5 standard errors of a Bernoulli mean: 5 sqrt(p (1 - p) / draws) <= 5 * 0.5 / sqrt(20000) = 0.018
    torch.testing.assert_close(got, means.double(), rtol=0, atol=5 * 0.5 / draws**0.5)
    assert set(torch.unique(env.step(torch.zeros(env.num_envs, dtype=torch.long))[1]).tolist()) <= {0.0, 1.0}


def test_gaussian_reward_means_and_spread_match():
    base, draws = gaussian(), 20000
    env, got = mean_rewards(lambda r: GaussianBandit(base.means.repeat(r, 1), sigma=0.5, horizon=5), draws)
    torch.testing.assert_close(got, base.means.double(), rtol=0, atol=5 * 0.5 / draws**0.5)  # 5 s.e. of sigma 0.5
    r = env.step(torch.ones(env.num_envs, dtype=torch.long))[1].double().reshape(draws, 2)
    torch.testing.assert_close(
        r.std(0), torch.full((2,), 0.5, **F64), rtol=0, atol=0.02
    )  # s.e. of a std: 0.5 / sqrt(40000) = 0.0025


def test_linear_bandit_means_are_features_dot_theta():
    base, draws = linear(), 20000
    by_hand = torch.stack([torch.stack([base.features[i, a] @ base.theta[i] for a in range(4)]) for i in range(3)])
    torch.testing.assert_close(base.expected_rewards(), by_hand, rtol=0, atol=1e-6)
    _, got = mean_rewards(
        lambda r: LinearBandit(base.features.repeat(r, 1, 1), base.theta.repeat(r, 1), noise=0.3, horizon=5), draws
    )
    torch.testing.assert_close(got, by_hand.double(), rtol=0, atol=5 * 0.3 / draws**0.5)  # 5 s.e. of noise 0.3
    obs, _ = base.reset(seed=0)
    torch.testing.assert_close(obs, base.features.flatten(1), rtol=0, atol=0)  # the observation is the arm features


def test_plain_envs_play_like_the_vectorised_env_with_the_same_means():
    """Means 0 or 1 make Bernoulli rewards certain, so the two envs must give identical trajectories."""
    means = [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    vec = BernoulliBandit(torch.tensor(means), horizon=12)
    plain = PlainEnvs([PlainBandit(m, 12) for m in means])
    assert (plain.num_envs, plain.num_actions, plain.horizon, plain.obs_dim) == (3, 3, 12, 0)
    a = run_algorithm(UCB(), vec, 12, torch.Generator().manual_seed(0))
    b = run_algorithm(UCB(), plain, 12, torch.Generator().manual_seed(0))
    assert torch.equal(a.actions, b.actions)
    torch.testing.assert_close(b.rewards, a.rewards, rtol=0, atol=0)
    torch.testing.assert_close(b.regret, a.regret, rtol=0, atol=0)
    assert torch.equal(a.optimal, b.optimal)


def test_plain_envs_regret_is_each_envs_gap():
    plain = PlainEnvs([PlainBandit([0.2, 0.8], 5), PlainBandit([0.6, 0.3], 5)])
    plain.reset(seed=0)
    _, reward, _, _, info = plain.step(torch.tensor([0, 0]))
    torch.testing.assert_close(info["regret"], torch.tensor([0.6, 0.0]), rtol=0, atol=1e-6)
    assert set(reward.tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", sorted(ENVS))
@pytest.mark.parametrize("bad", [-1, "k"])
def test_an_out_of_range_action_is_a_config_error_naming_it(name, bad):
    env = ENVS[name]()
    env.reset(seed=0)
    value = env.num_actions if bad == "k" else bad
    action = torch.zeros(env.num_envs, dtype=torch.long)
    action[1] = value
    with pytest.raises(ConfigError, match=rf"action {value} of task 1 is out of range"):
        env.step(action)


def test_a_float_or_misshapen_action_is_a_config_error():
    env = bernoulli()
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="one integer action per task"):
        env.step(torch.zeros(3))
    with pytest.raises(ConfigError, match=r"shape \(3,\)"):
        env.step(torch.zeros(2, dtype=torch.long))
