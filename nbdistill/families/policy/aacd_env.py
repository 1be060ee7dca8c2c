"""The toy task of ``policy.aacd``: reach a hidden 2-D goal, vectorised in torch (Gymnasium-style API).

``N`` episodes run at once. The agent starts at the origin; an action ``a`` in ``[-1, 1]^2`` (clipped)
moves it by ``step * a``; the reward is ``-|p - g|`` each step (``p`` the position, ``g`` the goal)
and an episode is truncated after ``horizon`` steps (no termination). Success: the final distance is
below ``success_radius``.

- The **privileged state** (the teacher's and the critic's input) is ``[p, g]`` (4 numbers).
- The **restricted observation** (the student's) is ``[p, g + noise, touch * (g - p), touch]`` (7
  numbers): a goal seen through fresh Gaussian noise of std ``noise`` each step, and a short-range
  "touch" signal that gives the exact offset once the agent is within ``touch_radius`` of the goal. A
  memoryless student can head for the noisy goal and finish by touch, so it can solve the task, but
  less trivially than the teacher. With ``observe="privileged"`` the observation is the state itself.
"""

from __future__ import annotations

import torch

OBSERVATIONS = ("restricted", "privileged")


class ReachEnv:
    """``reset(seed) -> (obs, info)``; ``step(action [N, 2]) -> (obs, reward, terminated, truncated, info)``;
    ``state()`` the privileged state ``[N, 4]``; ``info["distance"]`` and ``info["success"]``."""

    state_dim = 4
    num_actions = 2

    def __init__(
        self,
        goals: torch.Tensor,
        horizon: int = 20,
        step: float = 0.2,
        noise: float = 0.5,
        touch_radius: float = 0.3,
        success_radius: float = 0.15,
        observe: str = "restricted",
    ):
        self.goals = goals.detach().float().reshape(-1, 2)
        self.num_envs = len(self.goals)
        self.horizon, self.step_size, self.noise = horizon, step, noise
        self.touch_radius, self.success_radius, self.observe = touch_radius, success_radius, observe
        self.obs_dim = 4 if observe == "privileged" else 7
        self.position = torch.zeros_like(self.goals)
        self.t = 0
        self.generator = torch.Generator().manual_seed(0)

    def state(self) -> torch.Tensor:
        return torch.cat([self.position, self.goals], -1)

    def observation(self) -> torch.Tensor:
        if self.observe == "privileged":
            return self.state()
        offset = self.goals - self.position
        touch = (offset.norm(dim=-1, keepdim=True) < self.touch_radius).float()
        seen = self.goals + self.noise * torch.randn(self.goals.shape, generator=self.generator)
        return torch.cat([self.position, seen, touch * offset, touch], -1)

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict]:
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self.position = torch.zeros_like(self.goals)
        self.t = 0
        return self.observation(), {}

    def step(self, action: torch.Tensor):
        self.position = self.position + self.step_size * action.detach().float().clamp(-1.0, 1.0)
        self.t += 1
        distance = (self.position - self.goals).norm(dim=-1)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        truncated = torch.full((self.num_envs,), self.t >= self.horizon)
        info = {"distance": distance, "success": distance < self.success_radius}
        return self.observation(), -distance, terminated, truncated, info
