r"""A toy 2-D reaching task for archive distillation (``policy.archive``), vectorised in torch.

:class:`PointReach` steps ``N`` point robots at once with the Gymnasium API
(``reset(seed=) -> (obs, info)``, ``step(action) -> (obs, reward, terminated, truncated, info)``):

- every robot starts at the origin of the square ``[-1, 1]^2``; the observation is
  ``(x, y, t / T)`` (the time makes the fixed-horizon task Markov);
- an action ``a_t ∈ [-1, 1]^2`` (clipped) moves it by ``max_step · a_t``, clipped to the square;
- the reward is ``r_t = (1 - ‖a_t‖² / 2) / T ∈ [0, 1/T]``, so the fitness (the undiscounted return)
  ``f = 1 - E_t ‖a_t‖² / 2`` is one minus the energy used, in ``[0, 1]``: standing still scores 1,
  a corner (``⌈√2 / (√2 · max_step)⌉`` full diagonal steps) costs the most;
- the episode ends after ``T = horizon`` steps (``terminated`` then: time is in the state, so the last
  step is a true end, not a truncation); the descriptor is the final position ``(x, y)``.

Where nbdistill differs from DCG-MAP-Elites' benchmarks (Brax Ant/Walker, 250-1000 steps, descriptors
normalised to ``[-1, 1]``): a point robot with 10 steps runs in milliseconds on a CPU, and its
descriptor space already is ``[-1, 1]^2``. Rewards are kept non-negative (a per-step bonus of ``1/T``
minus the energy) because the descriptor-conditioned critic scales them by a similarity in ``(0, 1]``:
with negative rewards, scaling them towards 0 would make missing the target look better than reaching it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ...core.errors import ConfigError

#: Sizes of the task: observation ``(x, y, t/T)``, action ``(dx, dy)``, descriptor ``(x, y)``.
OBS_DIM, ACTION_DIM, DESCRIPTOR_DIM = 3, 2, 2
#: The descriptor space's bounds (both coordinates).
LOW, HIGH = -1.0, 1.0


class PointReach:
    """``num_envs`` point robots on ``[-1, 1]^2`` for ``horizon`` steps (see the module docstring).

    The task is deterministic: ``reset(seed=)`` is accepted for the Gymnasium API and ignored.
    """

    obs_dim, action_dim, descriptor_dim = OBS_DIM, ACTION_DIM, DESCRIPTOR_DIM

    def __init__(self, num_envs: int, horizon: int = 10, max_step: float = 0.2, device: torch.device | str | None = None):
        if num_envs < 1:
            raise ConfigError(f"PointReach needs at least one robot, got num_envs={num_envs}")
        if horizon < 1:
            raise ConfigError(f"PointReach's horizon must be at least 1 step, got {horizon}")
        if not 0.0 < max_step <= 2.0:
            raise ConfigError(f"PointReach's max_step must be in (0, 2], got {max_step}")
        self.num_envs, self.horizon, self.max_step = int(num_envs), int(horizon), float(max_step)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.position = torch.zeros(self.num_envs, 2, device=self.device)
        self.t = 0

    def observation(self) -> torch.Tensor:
        time = torch.full((self.num_envs, 1), self.t / self.horizon, device=self.device)
        return torch.cat([self.position, time], dim=1)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        self.position = torch.zeros(self.num_envs, 2, device=self.device)
        self.t = 0
        return self.observation(), {"position": self.position.clone()}

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        action = torch.as_tensor(action, device=self.device)
        if action.shape != (self.num_envs, ACTION_DIM) or not action.is_floating_point():
            raise ConfigError(
                f"PointReach.step takes float actions of shape ({self.num_envs}, {ACTION_DIM}); got {action.dtype} "
                f"of shape {tuple(action.shape)}"
            )
        if self.t >= self.horizon:
            raise ConfigError("PointReach.step called after the episode ended; call reset() first")
        a = action.clamp(-1.0, 1.0)
        self.position = (self.position + self.max_step * a.to(self.position.dtype)).clamp(LOW, HIGH)
        self.t += 1
        reward = (1.0 - a.pow(2).sum(-1) / 2.0) / self.horizon
        done = torch.full((self.num_envs,), self.t >= self.horizon, device=self.device)
        return self.observation(), reward, done, torch.zeros_like(done), {"position": self.position.clone()}


@dataclass
class Episodes:
    """``N`` played episodes of ``T`` steps: the transitions and each episode's descriptor and fitness."""

    obs: torch.Tensor  # [N, T, obs_dim]
    actions: torch.Tensor  # [N, T, action_dim]
    rewards: torch.Tensor  # [N, T]
    next_obs: torch.Tensor  # [N, T, obs_dim]
    dones: torch.Tensor  # [N, T] float, 1 at the last step
    descriptors: torch.Tensor  # [N, 2]: the final positions
    fitness: torch.Tensor  # [N]: the returns


@torch.no_grad()
def play(env: PointReach, act: Callable[[torch.Tensor], torch.Tensor]) -> Episodes:
    """Play one episode of every robot of ``env`` with ``act(obs [N, obs_dim]) -> actions [N, 2]``."""
    obs, _ = env.reset()
    steps: list[tuple[torch.Tensor, ...]] = []
    for _ in range(env.horizon):
        action = act(obs).clamp(-1.0, 1.0)
        next_obs, reward, terminated, truncated, info = env.step(action)
        steps.append((obs, action, reward, next_obs, terminated.to(reward.dtype)))
        obs = next_obs
    o, a, r, o2, d = (torch.stack(parts, dim=1) for parts in zip(*steps))
    return Episodes(o, a, r, o2, d, descriptors=env.position.clone(), fitness=r.sum(1))
