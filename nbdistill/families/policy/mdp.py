"""Small episodic tabular MDPs with the Gymnasium API, vectorised in torch: ``N`` MDPs step at once.

An MDP has ``S`` states, ``A`` actions, transitions ``P(s' | s, a)`` ``[N, S, A, S]``, deterministic rewards
``r(s, a)`` in ``[0, 1]`` ``[N, S, A]``, episodes of ``H`` steps from an initial distribution ``rho`` ``[N, S]``
(the setting of Azar, Osband & Munos 2017, "Minimax Regret Bounds for Reinforcement Learning").

Exact values by backward induction (Bellman, finite horizon): ``V*_{H+1} = 0``,
``Q*_h(s, a) = r(s, a) + sum_{s'} P(s' | s, a) V*_{h+1}(s')``, ``V*_h(s) = max_a Q*_h(s, a)``; a policy
``pi [N, H, S]`` is evaluated the same way with ``V^pi_h(s) = Q^pi_h(s, pi_h(s))``. The regret of an episode
played with ``pi`` is exact: ``rho . (V*_1 - V^pi_1)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import ConfigError


class TabularMDP:
    """``N`` episodic MDPs; the observation is the one-hot state ``[N, S]``.

    Args:
        transitions: ``[N, S, A, S]``, each ``P(. | s, a)`` a distribution.
        rewards: ``[N, S, A]`` deterministic rewards in ``[0, 1]``.
        horizon: ``H``, the steps of an episode (truncated after the ``H``-th).
        initial: ``[N, S]`` or ``[S]`` the initial state distribution (default: state 0).
    """

    def __init__(self, transitions: torch.Tensor, rewards: torch.Tensor, horizon: int, initial: torch.Tensor | None = None):
        transitions = torch.as_tensor(transitions, dtype=torch.float64)
        rewards = torch.as_tensor(rewards, dtype=torch.float64)
        if transitions.dim() != 4 or transitions.shape[1] != transitions.shape[3] or rewards.shape != transitions.shape[:3]:
            raise ConfigError(
                f"TabularMDP takes transitions [N, S, A, S] and rewards [N, S, A], got {tuple(transitions.shape)} and {tuple(rewards.shape)}"
            )
        if (transitions < 0).any() or not bool(((transitions.sum(-1) - 1).abs() < 1e-6).all()):
            raise ConfigError("every transitions[n, s, a] must be a probability distribution over the next states")
        if ((rewards < 0) | (rewards > 1)).any():
            raise ConfigError("the rewards must lie in [0, 1]")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"the horizon must be an integer of at least 1, got {horizon!r}")
        n, s, a, _ = transitions.shape
        if initial is None:
            initial = torch.nn.functional.one_hot(torch.zeros(n, dtype=torch.long), s)
        initial = torch.as_tensor(initial, dtype=torch.float64).expand(n, s)
        self.transitions, self.rewards, self.initial = transitions, rewards, initial
        self.num_envs, self.num_states, self.num_actions, self.horizon = n, s, a, horizon
        self.obs_dim = s
        self.generator = torch.Generator()
        self.state = torch.zeros(n, dtype=torch.long)
        self.h = 0

    def observation(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.state, self.num_states).float()

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self.state = torch.multinomial(self.initial, 1, generator=self.generator)[:, 0]
        self.h = 0
        return self.observation(), {"state": self.state.clone(), "step": 0}

    def step(self, action: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        if self.h >= self.horizon:
            raise ConfigError(f"the episode ended after {self.horizon} steps: call reset() first")
        action = torch.as_tensor(action)
        if action.shape != (self.num_envs,) or action.is_floating_point():
            raise ConfigError(
                f"TabularMDP.step takes one integer action per MDP, shape ({self.num_envs},); got {tuple(action.shape)}"
            )
        bad = (action < 0) | (action >= self.num_actions)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ConfigError(
                f"action {int(action[i])} of MDP {i} is out of range: the MDPs have actions 0..{self.num_actions - 1}"
            )
        rows = torch.arange(self.num_envs)
        reward = self.rewards[rows, self.state, action].float()
        self.state = torch.multinomial(self.transitions[rows, self.state, action], 1, generator=self.generator)[:, 0]
        self.h += 1
        terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        truncated = torch.full((self.num_envs,), self.h >= self.horizon)
        return self.observation(), reward, terminated, truncated, {"state": self.state.clone(), "step": self.h}

    def optimal_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(V* [N, H + 1, S], Q* [N, H, S, A])`` by backward induction (float64); step ``h`` is 0-based."""
        return backward_induction(self.transitions, self.rewards, self.horizon)

    def policy_values(self, policy: torch.Tensor) -> torch.Tensor:
        """``V^pi [N, H + 1, S]`` of a deterministic non-stationary ``policy`` ``[N, H, S]`` (long)."""
        n, s = self.num_envs, self.num_states
        values = torch.zeros(n, self.horizon + 1, s, dtype=torch.float64)
        for h in reversed(range(self.horizon)):
            q = self.rewards + torch.einsum("nsat,nt->nsa", self.transitions, values[:, h + 1])
            values[:, h] = q.gather(2, policy[:, h, :, None])[..., 0]
        return values

    def regret(self, policy: torch.Tensor) -> torch.Tensor:
        """``[N]`` the exact regret of an episode played with ``policy``: ``rho . (V*_1 - V^pi_1)``."""
        best = (self.initial * self.optimal_values()[0][:, 0]).sum(-1)
        return best - (self.initial * self.policy_values(policy)[:, 0]).sum(-1)


def backward_induction(transitions: torch.Tensor, rewards: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``V*_h(s) = max_a r(s, a) + sum_s' P(s' | s, a) V*_{h+1}(s')``, ``V*_H = 0``: ``(V [N, H + 1, S], Q [N, H, S, A])``."""
    n, s, a, _ = transitions.shape
    values = torch.zeros(n, horizon + 1, s, dtype=transitions.dtype)
    q = torch.zeros(n, horizon, s, a, dtype=transitions.dtype)
    for h in reversed(range(horizon)):
        q[:, h] = rewards + torch.einsum("nsat,nt->nsa", transitions, values[:, h + 1])
        values[:, h] = q[:, h].max(-1).values
    return values, q


def random_mdp(n: int, states: int = 5, actions: int = 2, horizon: int = 5, seed: int = 0) -> TabularMDP:
    """``n`` random MDPs from ``seed``: ``P(. | s, a) ~ Dirichlet(1)``, ``r(s, a) ~ U(0, 1)``, start in state 0."""
    for name, value, low in (("n", n, 1), ("states", states, 1), ("actions", actions, 2), ("horizon", horizon, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}")
    g = torch.Generator().manual_seed(seed)
    draws = -torch.rand(n, states, actions, states, generator=g, dtype=torch.float64).clamp(min=1e-12).log()  # Exp(1)
    rewards = torch.rand(n, states, actions, generator=g, dtype=torch.float64)
    return TabularMDP(draws / draws.sum(-1, keepdim=True), rewards, horizon)
