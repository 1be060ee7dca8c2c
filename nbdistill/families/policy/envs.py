"""Bandit environments with the Gymnasium API, vectorised in torch: ``N`` tasks step at once.

Every environment follows Gymnasium's ``reset(seed=...) -> (obs, info)`` and
``step(action) -> (obs, reward, terminated, truncated, info)``, with tensors whose first axis is the
task: ``action`` is a ``LongTensor [N]``, ``reward`` ``[N]``, ``terminated``/``truncated`` ``[N]``
booleans (a bandit never terminates; it is truncated at its ``horizon``). ``info`` carries what the
regret needs: ``"regret"`` ``[N]``, the expected reward of the best action minus the chosen one's
(the pseudo-regret of Lattimore & Szepesvári, "Bandit Algorithms", §4.1), and
``"optimal_action"`` ``[N]``. :meth:`VectorEnv.expected_rewards` gives the arms' means (oracle
knowledge, for regret and for DPT's labels; a learner never reads it).

- :class:`BernoulliBandit`: rewards 0/1 with the arms' means (EVOLvE's ``BernoulliBandit``);
- :class:`GaussianBandit`: rewards ``N(mean, sigma^2)``, one sigma for all arms (EVOLvE asserts equal variances);
- :class:`LinearBandit`: arm ``k`` of task ``i`` has features ``phi_ik`` and mean ``phi_ik . theta_i``,
  reward ``+ N(0, noise^2)``; the observation is the flattened features (as in DPT's linear bandit);
- :class:`PlainEnvs`: a list of single, non-vectorised Gymnasium-style envs a user wrote, stepped together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...core.errors import ConfigError


class VectorEnv:
    """``num_envs`` tasks with ``num_actions`` actions each, stepped together for ``horizon`` steps.

    Subclasses give :meth:`expected_rewards` and :meth:`draw_rewards`; observations are empty
    (``obs_dim = 0``) unless a subclass says otherwise.
    """

    num_envs: int
    num_actions: int
    horizon: int
    obs_dim: int = 0

    def __init__(self, num_envs: int, num_actions: int, horizon: int):
        if num_actions < 2:
            raise ConfigError(f"a bandit needs at least 2 actions, got {num_actions}")
        if horizon < 1:
            raise ConfigError(f"the horizon must be at least 1 step, got {horizon}")
        self.num_envs, self.num_actions, self.horizon = int(num_envs), int(num_actions), int(horizon)
        self.t = 0
        self.generator = torch.Generator()

    def expected_rewards(self) -> torch.Tensor:
        """``[N, K]``: each action's expected reward (oracle knowledge)."""
        raise NotImplementedError

    def draw_rewards(self, action: torch.Tensor) -> torch.Tensor:
        """``[N]`` rewards of ``action`` drawn with :attr:`generator`."""
        raise NotImplementedError

    def observation(self) -> torch.Tensor:
        return torch.zeros(self.num_envs, self.obs_dim)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self.t = 0
        return self.observation(), {"optimal_action": self.optimal_action()}

    def optimal_action(self) -> torch.Tensor:
        return self.expected_rewards().argmax(-1)

    def check_action(self, action: Any) -> torch.Tensor:
        """``action`` as a ``LongTensor [N]`` of valid actions, or a ConfigError naming the bad one."""
        action = torch.as_tensor(action)
        if action.shape != (self.num_envs,) or action.is_floating_point():
            raise ConfigError(
                f"{type(self).__name__}.step takes one integer action per task, shape ({self.num_envs},); got "
                f"{action.dtype} of shape {tuple(action.shape)}"
            )
        bad = (action < 0) | (action >= self.num_actions)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ConfigError(
                f"action {int(action[i])} of task {i} is out of range: the tasks have actions 0..{self.num_actions - 1}"
            )
        return action.long()

    def step(self, action: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        action = self.check_action(action)
        means = self.expected_rewards()
        reward = self.draw_rewards(action)
        self.t += 1
        regret = means.max(-1).values - means.gather(1, action[:, None])[:, 0]
        done = torch.zeros(self.num_envs, dtype=torch.bool)
        truncated = torch.full((self.num_envs,), self.t >= self.horizon)
        return self.observation(), reward, done, truncated, {"regret": regret, "optimal_action": means.argmax(-1)}


def _check_means(means: torch.Tensor, name: str) -> torch.Tensor:
    means = torch.as_tensor(means, dtype=torch.get_default_dtype())
    if means.dim() != 2:
        raise ConfigError(f"{name} takes the arms' means as [tasks, arms], got shape {tuple(means.shape)}")
    return means


class BernoulliBandit(VectorEnv):
    """Rewards ``r ~ Bernoulli(mu_a)``; ``means`` ``[N, K]`` in ``[0, 1]``."""

    def __init__(self, means: torch.Tensor, horizon: int):
        means = _check_means(means, "BernoulliBandit")
        if ((means < 0) | (means > 1)).any():
            raise ConfigError("a Bernoulli bandit's means must lie in [0, 1]")
        super().__init__(means.shape[0], means.shape[1], horizon)
        self.means = means

    def expected_rewards(self) -> torch.Tensor:
        return self.means

    def draw_rewards(self, action: torch.Tensor) -> torch.Tensor:
        p = self.means.gather(1, action[:, None])[:, 0]
        return (torch.rand(p.shape, generator=self.generator, dtype=p.dtype) < p).to(p.dtype)


class GaussianBandit(VectorEnv):
    """Rewards ``r ~ N(mu_a, sigma^2)``, one ``sigma`` for every arm; ``means`` ``[N, K]``."""

    def __init__(self, means: torch.Tensor, sigma: float, horizon: int):
        means = _check_means(means, "GaussianBandit")
        if not sigma > 0:
            raise ConfigError(f"sigma must be positive, got {sigma}")
        super().__init__(means.shape[0], means.shape[1], horizon)
        self.means, self.sigma = means, float(sigma)

    def expected_rewards(self) -> torch.Tensor:
        return self.means

    def draw_rewards(self, action: torch.Tensor) -> torch.Tensor:
        mu = self.means.gather(1, action[:, None])[:, 0]
        return mu + self.sigma * torch.randn(mu.shape, generator=self.generator, dtype=mu.dtype)


class LinearBandit(VectorEnv):
    """Stochastic linear bandit: mean ``phi_ik . theta_i``, reward ``+ N(0, noise^2)``; obs = the features.

    Args:
        features: ``[N, K, d]`` arm features (fixed over the episode, as in DPT's linear bandit).
        theta: ``[N, d]`` the unknown parameter of each task.
    """

    def __init__(self, features: torch.Tensor, theta: torch.Tensor, noise: float, horizon: int):
        features, theta = torch.as_tensor(features), torch.as_tensor(theta)
        if features.dim() != 3 or theta.dim() != 2 or features.shape[0] != theta.shape[0] or features.shape[2] != theta.shape[1]:
            raise ConfigError(
                f"LinearBandit takes features [tasks, arms, d] and theta [tasks, d], got {tuple(features.shape)} and {tuple(theta.shape)}"
            )
        if noise < 0:
            raise ConfigError(f"noise must be at least 0, got {noise}")
        super().__init__(features.shape[0], features.shape[1], horizon)
        self.features, self.theta, self.noise = features, theta, float(noise)
        self.dim = features.shape[2]
        self.obs_dim = self.num_actions * self.dim

    def expected_rewards(self) -> torch.Tensor:
        return torch.einsum("nkd,nd->nk", self.features, self.theta)

    def draw_rewards(self, action: torch.Tensor) -> torch.Tensor:
        mu = self.expected_rewards().gather(1, action[:, None])[:, 0]
        return mu + self.noise * torch.randn(mu.shape, generator=self.generator, dtype=mu.dtype)

    def observation(self) -> torch.Tensor:
        return self.features.flatten(1)


class PlainEnvs(VectorEnv):
    """Single Gymnasium-style environments written the plain way, stepped as one :class:`VectorEnv`.

    Each env has ``reset(seed=None) -> (obs, info)`` and ``step(action: int) -> (obs, reward,
    terminated, truncated, info)`` with Python numbers, and says its actions by ``action_space.n``
    (a Gymnasium ``Discrete`` space) or ``num_actions``. Regret needs each env's expected rewards:
    ``expected_rewards()`` (a sequence of K numbers) or ``means``; an env without them can still be
    played (rewards are recorded), but not scored by regret.

    Args:
        envs: the environments, one a task.
        horizon: steps an episode lasts (default: each env's ``horizon`` attribute).
    """

    def __init__(self, envs: Sequence[Any], horizon: int | None = None):
        envs = list(envs)
        if not envs:
            raise ConfigError("PlainEnvs needs at least one environment")
        counts = {_num_actions(e) for e in envs}
        if len(counts) != 1:
            raise ConfigError(f"every environment must have the same number of actions, got {sorted(counts)}")
        if horizon is None:
            horizon = getattr(envs[0], "horizon", None)
            if horizon is None:
                raise ConfigError("give PlainEnvs a horizon (or the envs a `horizon` attribute)")
        super().__init__(len(envs), counts.pop(), horizon)
        self.envs = envs
        first = envs[0].reset()[0]
        self.obs_dim = int(torch.as_tensor(first, dtype=torch.float32).numel()) if first is not None else 0
        self._obs = None

    def expected_rewards(self) -> torch.Tensor:
        rows = []
        for e in self.envs:
            means = e.expected_rewards() if callable(getattr(e, "expected_rewards", None)) else getattr(e, "means", None)
            if means is None:
                raise ConfigError(
                    f"{type(e).__name__} gives no expected rewards: add expected_rewards() (or a `means` attribute) to score it by regret"
                )
            rows.append(torch.as_tensor(means, dtype=torch.get_default_dtype()).reshape(-1))
        return torch.stack(rows)

    def has_expected_rewards(self) -> bool:
        e = self.envs[0]
        return callable(getattr(e, "expected_rewards", None)) or getattr(e, "means", None) is not None

    def observation(self) -> torch.Tensor:
        if self._obs is None or self.obs_dim == 0:
            return torch.zeros(self.num_envs, self.obs_dim)
        return torch.stack([torch.as_tensor(o, dtype=torch.float32).reshape(-1) for o in self._obs])

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        self.t = 0
        self._obs = [e.reset(seed=None if seed is None else int(seed) + i)[0] for i, e in enumerate(self.envs)]
        info = {"optimal_action": self.optimal_action()} if self.has_expected_rewards() else {}
        return self.observation(), info

    def step(self, action: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        action = self.check_action(action)
        results = [e.step(int(a)) for e, a in zip(self.envs, action.tolist())]
        self._obs = [r[0] for r in results]
        reward = torch.tensor([float(r[1]) for r in results])
        terminated = torch.tensor([bool(r[2]) for r in results])
        self.t += 1
        truncated = torch.tensor([bool(r[3]) or self.t >= self.horizon for r in results])
        info: dict[str, Any] = {}
        if self.has_expected_rewards():
            means = self.expected_rewards()
            info = {"regret": means.max(-1).values - means.gather(1, action[:, None])[:, 0], "optimal_action": means.argmax(-1)}
        return self.observation(), reward, terminated, truncated, info


def _num_actions(env: Any) -> int:
    space = getattr(env, "action_space", None)
    n = getattr(space, "n", None) if space is not None else None
    n = n if n is not None else getattr(env, "num_actions", None)
    if n is None:
        raise ConfigError(f"{type(env).__name__} must say its number of actions: an `action_space` with `.n` or `num_actions`")
    return int(n)
