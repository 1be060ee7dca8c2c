"""Reaching tasks for ``policy.aacd``: each row of ``x`` is one task's hidden 2-D goal, uniform on
``[-1, 1]^2`` and drawn from ``data_seed``; ``y`` is zeros. ``.make_env(x, observe=...)`` builds the
vectorised :class:`~nbdistill.families.policy.aacd_env.ReachEnv` of a batch of goals."""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ConfigError
from .base import ArrayDataModule


class ReachTasks(ArrayDataModule):
    """``n_tasks`` goals (train), ``n_eval`` held-out goals each for val and test; episodes of ``horizon`` steps.

    Args:
        n_tasks, n_eval: goals in the training split; in each of val and test.
        horizon: steps an episode lasts. noise: std of the student's view of the goal.
        data_seed: seed of the goals. batch_size: goals (parallel episodes) in a training step.
    """

    def __init__(
        self,
        n_tasks: int = 512,
        n_eval: int = 128,
        horizon: int = 20,
        noise: float = 0.5,
        data_seed: int = 0,
        batch_size: int = 64,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        for name, value, low in (("n_tasks", n_tasks, 2), ("n_eval", n_eval, 1), ("horizon", horizon, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"ReachTasks' {name} must be an integer of at least {low}, got {value!r}")
        if not 0.0 <= float(noise) <= 10.0:
            raise ConfigError(f"ReachTasks' noise must be in [0, 10], got {noise!r}")
        self.n_tasks, self.n_eval, self.horizon, self.noise, self.data_seed = n_tasks, n_eval, horizon, float(noise), data_seed
        self.num_classes = 1
        self.input_shape = (2,)

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(self.data_seed)
        goals = rng.uniform(-1.0, 1.0, size=(self.n_tasks + 2 * self.n_eval, 2)).astype(np.float32)
        cuts = {
            "train": goals[: self.n_tasks],
            "val": goals[self.n_tasks : self.n_tasks + self.n_eval],
            "test": goals[self.n_tasks + self.n_eval :],
        }
        return {k: (v, np.zeros(len(v), dtype=np.int64)) for k, v in cuts.items()}

    def make_env(self, x: torch.Tensor, observe: str = "restricted"):
        from ..families.policy.aacd_env import ReachEnv

        return ReachEnv(torch.as_tensor(x), horizon=self.horizon, noise=self.noise, observe=observe)
