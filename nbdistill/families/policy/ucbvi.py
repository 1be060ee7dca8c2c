"""UCB-VI (Azar, Osband & Munos 2017, "Minimax Regret Bounds for Reinforcement Learning"), Chernoff–Hoeffding bonus.

Optimistic value iteration on the empirical MDP, vectorised over ``N`` tabular MDPs. Before episode ``k``,
with ``n(s, a)`` visits, empirical transitions ``P_hat(s' | s, a)`` and empirical rewards ``r_hat(s, a)``
(the paper's Algorithm 1 with ``bonus_1``), for ``h = H .. 1``:

    b(s, a)   = 7 H L sqrt(1 / n(s, a)),      L = ln(5 S A T / delta),   T = K H the steps planned
    Q_h(s, a) = min(Q^{k-1}_h(s, a), H, r_hat(s, a) + P_hat(. | s, a) . V_{h+1} + b(s, a))   if n(s, a) > 0, else H
    V_h(s)    = max_a Q_h(s, a),  V_{H+1} = 0

and the episode is played greedily in ``Q``. The regret is ``O~(H sqrt(S A T) + H^2 S^2 A)`` (their Theorem 1).

Where nbdistill differs: ``bonus_scale`` multiplies the bonus (1 is the paper's ``7 H L``; the constant is
loose, and at the sizes of a CPU test the paper's bonus keeps every ``Q`` at its cap ``H`` for thousands of
episodes, so tests and the notebook use a smaller scale); the reward is estimated from what was observed
rather than assumed known (the paper's analysis treats it as known; the two coincide once ``(s, a)`` is visited,
since rewards here are deterministic). No official code was published.
"""

from __future__ import annotations

import math

import torch

from ...core.errors import ConfigError
from .mdp import TabularMDP


class UCBVI:
    """UCB-VI with the Chernoff–Hoeffding bonus over ``N`` MDPs at once (see the module docstring).

    Args:
        bonus_scale: multiplies the paper's bonus ``7 H L / sqrt(n)`` (1: the paper's).
        delta: the confidence ``delta`` in ``L = ln(5 S A T / delta)``.
    """

    def __init__(self, bonus_scale: float = 1.0, delta: float = 0.1):
        if bonus_scale < 0 or not 0 < delta < 1:
            raise ConfigError(f"UCB-VI needs bonus_scale >= 0 and delta in (0, 1), got {bonus_scale}, {delta}")
        self.bonus_scale, self.delta = float(bonus_scale), float(delta)

    def reset(self, env: TabularMDP, episodes: int) -> None:
        """Forget everything; ``episodes`` (``K``) sets ``T = K H`` in the log term."""
        if not isinstance(env, TabularMDP):
            raise ConfigError(f"UCB-VI plays a TabularMDP, not {type(env).__name__}")
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ConfigError(f"episodes must be an integer of at least 1, got {episodes!r}")
        self.env = env
        n, s, a, h = env.num_envs, env.num_states, env.num_actions, env.horizon
        self.counts = torch.zeros(n, s, a, s, dtype=torch.float64)  # n(s, a, s')
        self.reward_sums = torch.zeros(n, s, a, dtype=torch.float64)
        self.q = torch.full((n, h, s, a), float(h), dtype=torch.float64)  # Q^{k-1}, optimistic at the start
        self.log_term = math.log(5 * s * a * episodes * h / self.delta)

    @property
    def visits(self) -> torch.Tensor:
        """``[N, S, A]`` ``n(s, a)``."""
        return self.counts.sum(-1)

    def bonus(self) -> torch.Tensor:
        """``[N, S, A]``: ``bonus_scale * 7 H L / sqrt(n(s, a))`` (infinite where never visited)."""
        n = self.visits
        return torch.where(n > 0, self.bonus_scale * 7 * self.env.horizon * self.log_term / n.clamp(min=1).sqrt(), math.inf)

    def plan(self) -> torch.Tensor:
        """Optimistic value iteration (the module docstring's recursion); returns the greedy policy ``[N, H, S]``."""
        n = self.visits
        seen = n > 0
        p_hat = self.counts / n.clamp(min=1)[..., None]
        r_hat = self.reward_sums / n.clamp(min=1)
        bonus = self.bonus().nan_to_num(posinf=0.0)
        cap = float(self.env.horizon)
        values = torch.zeros(self.env.num_envs, self.env.num_states, dtype=torch.float64)
        for h in reversed(range(self.env.horizon)):
            target = r_hat + torch.einsum("nsat,nt->nsa", p_hat, values) + bonus
            q = torch.where(seen, torch.minimum(self.q[:, h], target.clamp(max=cap)), torch.full_like(target, cap))
            self.q[:, h] = q
            values = q.max(-1).values
        return self.q.argmax(-1)

    def update(self, state: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_state: torch.Tensor) -> None:
        rows = torch.arange(len(state))
        self.counts[rows, state, action, next_state] += 1
        self.reward_sums[rows, state, action] += reward.double()


@torch.no_grad()
def run_ucbvi(algorithm: UCBVI, env: TabularMDP, episodes: int, seed: int = 0) -> torch.Tensor:
    """``[N, episodes]``: the exact regret ``rho . (V*_1 - V^{pi_k}_1)`` of each episode's greedy policy, played on ``env``."""
    algorithm.reset(env, episodes)
    regret = torch.zeros(env.num_envs, episodes, dtype=torch.float64)
    rows = torch.arange(env.num_envs)
    for k in range(episodes):
        policy = algorithm.plan()
        regret[:, k] = env.regret(policy)
        _, info = env.reset(seed=seed + k)
        state = info["state"]
        for h in range(env.horizon):
            action = policy[rows, h, state]
            _, reward, _, _, info = env.step(action)
            algorithm.update(state, action, reward, info["state"])
            state = info["state"]
    return regret
