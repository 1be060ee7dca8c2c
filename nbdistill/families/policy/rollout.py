"""Playing a bandit: an algorithm or an in-context model over ``horizon`` steps, and the regret it incurs.

A :class:`Trajectory` holds what happened in ``N`` tasks over ``T`` steps; its per-step ``regret`` is
the pseudo-regret ``mu* - mu_{a_t}`` (so the cumulative regret ``R_T = sum_t (mu* - mu_{a_t})``).
:func:`run_model` deploys an in-context model online (DPT's and AD's evaluation): at step ``t`` it
reads its own ``t`` transitions and acts by the argmax of its logits (or samples them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...core.errors import ConfigError
from .algorithms import BanditAlgorithm
from .envs import VectorEnv


@dataclass
class Trajectory:
    """``actions`` ``[N, T]`` long, ``rewards`` ``[N, T]``, ``regret`` ``[N, T]`` per step (empty when the
    environment cannot say it), ``optimal`` ``[N]`` the best actions (or None), ``guides``
    ``[N, T + 1, E]`` a guiding algorithm's statistics before each step and after the last (or None)."""

    actions: torch.Tensor
    rewards: torch.Tensor
    regret: torch.Tensor
    optimal: torch.Tensor | None = None
    guides: torch.Tensor | None = None

    def cumulative_regret(self) -> torch.Tensor:
        """``[N, T]``: ``R_t = sum_{s <= t} (mu* - mu_{a_s})``."""
        return self.regret.cumsum(-1)


def _play(
    env: VectorEnv, horizon: int, seed: int, choose, guide: BanditAlgorithm | None, learner: BanditAlgorithm | None = None
) -> Trajectory:
    """Step ``env`` with ``choose(t, obs, actions, rewards, guides)``; ``learner`` and ``guide`` (reset here,
    the same object or two) are told every outcome."""
    obs, info = env.reset(seed=seed)
    learners = [a for i, a in enumerate((learner, guide)) if a is not None and (i == 0 or a is not learner)]
    for a in learners:
        a.reset(env)
    n = env.num_envs
    actions = torch.zeros(n, horizon, dtype=torch.long)
    rewards = torch.zeros(n, horizon)
    regret = torch.zeros(n, horizon)
    guides = []
    scored = True
    for t in range(horizon):
        if guide is not None:
            guides.append(guide.guide().flatten(1))
        a = choose(t, obs, actions[:, :t], rewards[:, :t], torch.stack(guides, 1) if guides else None)
        obs, r, _, _, step_info = env.step(a)
        actions[:, t], rewards[:, t] = a, r
        if "regret" in step_info:
            regret[:, t] = step_info["regret"]
        else:
            scored = False
        for learning in learners:
            learning.update(a, r)
    if guide is not None:
        guides.append(guide.guide().flatten(1))
    return Trajectory(
        actions=actions,
        rewards=rewards,
        regret=regret if scored else regret[:, :0],
        optimal=info.get("optimal_action"),
        guides=torch.stack(guides, 1) if guides else None,
    )


@torch.no_grad()
def run_algorithm(
    algorithm: BanditAlgorithm,
    env: VectorEnv,
    horizon: int,
    generator: torch.Generator,
    seed: int = 0,
    guide: BanditAlgorithm | None = None,
) -> Trajectory:
    """``algorithm`` playing ``env``'s tasks for ``horizon`` steps (rewards drawn from ``seed``); with
    ``guide``, that algorithm's statistics are recorded along the way (it sees the same actions)."""

    def choose(t, obs, actions, rewards, guides):
        return algorithm.act(generator)

    return _play(env, horizon, seed, choose, guide, learner=algorithm)


@torch.no_grad()
def run_model(
    model: nn.Module,
    env: VectorEnv,
    horizon: int,
    generator: torch.Generator,
    seed: int = 0,
    sample: bool = False,
    guide: BanditAlgorithm | None = None,
) -> Trajectory:
    """An in-context model acting online on ``env`` from its own history.

    ``model(actions [N, t], rewards [N, t], obs [N, obs_dim] | None, extra [N, t + 1, E] | None)`` returns
    logits ``[N, t + 1, K]``; the last position's are the action's (argmax, or a draw when ``sample``).
    With ``guide``, that algorithm runs beside the model on the model's own actions and its statistics
    are the model's ``extra`` input (EVOLvE's algorithm-guided support).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def choose(t, obs, actions, rewards, guides):
        logits = (
            model(
                actions.to(device),
                rewards.to(device),
                obs.to(device) if env.obs_dim else None,
                guides.to(device) if guides is not None else None,
            )[:, -1]
            .float()
            .cpu()
        )
        if logits.shape != (env.num_envs, env.num_actions):
            raise ConfigError(
                f"the model gives {list(logits.shape)} logits a step but {type(env).__name__} has {env.num_envs} tasks of "
                f"{env.num_actions} actions: build it with num_actions={env.num_actions}"
            )
        if sample:
            return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        return logits.argmax(-1)

    try:
        return _play(env, horizon, seed, choose, guide)
    finally:
        model.train(was_training)
