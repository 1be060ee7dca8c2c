"""Bandit tasks from a user's own environments, written the plain Gymnasium way, for DPT and AD.

``EnvTasks(make_env, n_tasks, horizon)`` is a data module whose rows are seeds: task ``i`` is the env
``make_env(seed_i)`` (a single, non-vectorised env with ``reset(seed=...) -> (obs, info)``,
``step(action: int) -> (obs, reward, terminated, truncated, info)`` and ``action_space.n`` or
``num_actions``), its label the env's best arm. :meth:`EnvTasks.make_env` turns a batch of seed rows
into one :class:`~nbdistill.families.policy.envs.PlainEnvs`, so the methods train and are evaluated
on the user's environments exactly as on the built-in bandits. Each env must say its arms' expected
rewards (``expected_rewards()`` or ``means``): DPT's label is the best arm and the evaluation scores
regret. Build the student with ``obs_dim=tasks.obs_dim``: a plain bandit whose ``reset`` returns
the observation ``0`` (Gymnasium's ``Discrete(1)``) gives the start token an input of size 1. The seeds are ``data_seed * n_tasks + i`` (whole
numbers below ``2**24``, stored exactly as the float rows of a data module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..core.errors import ConfigError
from .bandits import BanditTasks

#: Seeds must be exact in float32 (the rows of a data module).
MAX_SEED = 2**24


class EnvTasks(BanditTasks):
    """Tasks made by ``make_env(seed)``, a user's plain Gymnasium-style bandit; a task a seed.

    Args:
        make_env: ``seed -> env``, one task's environment (its arms' means drawn from the seed).
        n_tasks: tasks in all (train + val + test).
        horizon: the steps a task is played for (default: the env's ``horizon`` attribute).
        data_seed: which block of seeds the tasks use.
        The rest as :class:`~nbdistill.data.bandits.BanditTasks`.
    """

    def __init__(
        self, make_env: Callable[[int], Any], n_tasks: int = 500, horizon: int | None = None, data_seed: int = 0, **kwargs
    ):
        if not callable(make_env):
            raise ConfigError(f"make_env must be a function seed -> environment, got {type(make_env).__name__}")
        if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
            raise ConfigError(f"data_seed must be a non-negative integer, got {data_seed!r}")
        if isinstance(n_tasks, int) and (data_seed + 1) * n_tasks > MAX_SEED:
            raise ConfigError(f"the seeds data_seed * n_tasks + i must stay below {MAX_SEED}: lower data_seed or n_tasks")
        self.user_make_env = make_env
        from ..families.policy.envs import PlainEnvs

        first = make_env(0)
        probe = PlainEnvs([first], horizon=horizon if horizon is not None else getattr(first, "horizon", None))
        super().__init__(arms=probe.num_actions, horizon=probe.horizon, n_tasks=n_tasks, data_seed=data_seed, **kwargs)
        self.input_shape = (1,)
        self.obs_dim = probe.obs_dim

    def draw_tasks(self, n: int, generator: torch.Generator) -> torch.Tensor:
        first = self.data_seed * self.n_tasks
        return torch.arange(first, first + n, dtype=torch.float64)[:, None]

    def make_env(self, x: torch.Tensor):
        """The :class:`~nbdistill.families.policy.envs.PlainEnvs` of the seed rows ``x`` ``[n, 1]``."""
        from ..families.policy.envs import PlainEnvs

        envs = PlainEnvs([self.user_make_env(int(round(float(s)))) for s in x[:, 0]], horizon=self.horizon)
        if envs.num_actions != self.arms:
            raise ConfigError(f"make_env gave environments with {envs.num_actions} actions, but its first had {self.arms}")
        if not envs.has_expected_rewards():
            raise ConfigError(
                f"{type(envs.envs[0]).__name__} gives no expected rewards: add expected_rewards() (or a `means` attribute) "
                "so that DPT has the best arm to learn and the evaluation can score regret"
            )
        width = envs.expected_rewards().shape[1]
        if width != self.arms:
            raise ConfigError(
                f"{type(envs.envs[0]).__name__} has {self.arms} actions (its action space) but reports expected rewards of "
                f"{width} arms: its best arm would be out of range; make them agree"
            )
        return envs
