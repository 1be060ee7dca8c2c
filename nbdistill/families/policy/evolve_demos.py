"""Distillation from in-context demonstrations (EVOLvE's few-shot demonstrations, as a trained student).

EVOLvE ("EVOLvE: Evaluating and Optimizing LLMs For Exploration", Nie et al. 2024, Section 4.2) puts an
optimal algorithm's behaviour in an LLM's context as few-shot demonstrations: decisions of UCB taken
from one stored trajectory (``banditbench/training/fewshot.py``: ``num_examples`` = 5 snapshots of the
history and UCB's action, every ``sample_freq`` = 2 steps after ``skip_first`` = 2), on a task
other than the one being played; oracle-behaviour fine-tuning (OFT) instead trains on UCB's decisions.
``policy.demo_ad`` joins the two for a small in-context student: its context is

    ``[ demonstration: the teacher's full trajectory (a'_0, r'_0, ..., a'_{D-1}, r'_{D-1}) on ANOTHER task
      | the current task's history (a_0, r_0, ..., a_{t-1}, r_{t-1}) ]``

and it imitates the teacher's action on the current task (AD's / OFT's loss, on the current part only):

    ``L(theta) = -(1/T) sum_{t=0}^{T-1} log pi_theta(a_t | demo, a_0, r_0, ..., a_{t-1}, r_{t-1})``.

The demonstration of task ``i`` in a batch is the teacher's trajectory on task ``i + 1`` (mod the
batch), played with its own reward noise; at evaluation, held-out task ``i`` is shown the teacher's
trajectory on held-out task ``i + 1``. Compared with EVOLvE: a whole trajectory stands for their
sampled (history, action) snapshots (the same information: each step's action is the teacher's
decision on the history before it), and the student is trained on such contexts (OFT with demos in
context) where EVOLvE prompts a frozen LLM. The student reads ``demo_length + context`` transitions:
build it with ``max_context`` at least that. The guide (algorithm-guided support) is not combined
with demonstrations here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import evolve_views  # noqa: F401  (registers the policy_regret_fit view this method declares)
from .algorithms import make_algorithm
from .base import POLICY_VIEWS, PolicyModule
from .evaluation import EVAL_SEED, RegretEvaluation
from .losses import ad_loss
from .rollout import Trajectory, run_algorithm, run_model

#: The algorithms whose demonstrations (and actions) are distilled.
TEACHERS = ("ucb", "thompson", "greedy", "linucb")
#: Seed offset of the demonstrations' reward noise (they never share the current task's draws).
DEMO_SEED = 7_919


def demo_context(demo: Trajectory, history: Trajectory, shift: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's context ``(actions, rewards)`` ``[N, D + T]``: task ``i``'s row is the demonstration
    played on task ``(i + shift) mod N``, then task ``i``'s own history."""
    actions = torch.cat([demo.actions.roll(-shift, 0), history.actions], 1)
    rewards = torch.cat([demo.rewards.roll(-shift, 0), history.rewards], 1)
    return actions, rewards


class DemoPrefixed(nn.Module):
    """A student that reads a fixed demonstration before its own history: ``forward(actions [N, t], ...)``
    returns the student's logits at the ``t + 1`` positions after the demonstration."""

    def __init__(self, student: nn.Module, demo_actions: torch.Tensor, demo_rewards: torch.Tensor):
        super().__init__()
        self.student = student
        self.register_buffer("demo_actions", demo_actions, persistent=False)
        self.register_buffer("demo_rewards", demo_rewards, persistent=False)

    def forward(self, actions, rewards, obs=None, extra=None):
        d = self.demo_actions.shape[1]
        a = torch.cat([self.demo_actions.to(actions.device), actions], 1)
        r = torch.cat([self.demo_rewards.to(rewards.device, rewards.dtype), rewards], 1)
        return self.student(a, r, obs)[:, d:]


class DemoRegretEvaluation(RegretEvaluation):
    """:class:`~.evaluation.RegretEvaluation` with each held-out task shown a demonstration on its neighbour."""

    def play_student(self, module: Any, env: Any, horizon: int) -> Trajectory:
        demo = module.demonstrations(env, torch.Generator().manual_seed(EVAL_SEED + DEMO_SEED), EVAL_SEED + DEMO_SEED)
        actions, rewards = demo_context(demo, Trajectory(demo.actions[:, :0], demo.rewards[:, :0], demo.regret[:, :0]))
        player = DemoPrefixed(module.student, actions.to(module.device), rewards.to(module.device))
        return run_model(player, env, horizon, torch.Generator().manual_seed(EVAL_SEED), seed=EVAL_SEED)


@register("policy.demo_ad", views=(*POLICY_VIEWS, "policy_regret_fit"), needs_teacher=False)
class DemoAD(PolicyModule):
    """Distillation from in-context demonstrations: imitate a bandit algorithm with its trajectory on another task in context (EVOLvE)."""

    teacher_algorithm = HParam(str, "ucb", choices=TEACHERS, help="the algorithm demonstrated and imitated")
    demo_length = HParam(int, 0, 0, 100_000, help="transitions of the demonstration; 0: the tasks' horizon")
    evaluation_class = DemoRegretEvaluation

    def context_policies(self) -> tuple[str, ...]:
        return (self.teacher_algorithm,)

    def demonstration_length(self) -> int:
        return int(self.demo_length) or int(self.task_source().horizon)

    def demonstrations(self, env: Any, generator: torch.Generator, seed: int) -> Trajectory:
        """The teacher's ``demo_length``-step trajectories on ``env``'s tasks (reward noise from ``seed``)."""
        return run_algorithm(make_algorithm(self.teacher_algorithm), env, self.demonstration_length(), generator, seed=seed)

    def check_data(self, data: Any) -> None:
        """The base's checks; no guide; the demonstration fits in the horizon and, with the history, in the student."""
        if self.guide != "none":
            raise ConfigError("policy.demo_ad does not read a guide's statistics: set guide='none' (use policy.ad for guide=...)")
        super().check_data(data)
        horizon = int(data.horizon)
        if int(self.demo_length) > horizon:
            raise ConfigError(
                f"demo_length ({self.demo_length}) is longer than the tasks' horizon ({horizon}): lower it to at most {horizon}"
            )
        longest = self.demonstration_length() + max(self.context_length(), self.evaluation_horizon() - 1)
        limit = getattr(self.student, "max_context", None)
        if limit is not None and longest > int(limit):
            raise ConfigError(
                f"the student reads at most {limit} transitions but policy.demo_ad gives it a {self.demonstration_length()}-step "
                f"demonstration plus up to {longest - self.demonstration_length()} of its own: build it with max_context={longest}, "
                "or lower demo_length / context"
            )

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        env, played = self.play(batch[0], self.teacher_algorithm)
        generator = self.step_generator()
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) + DEMO_SEED
        demo = self.demonstrations(env, generator, seed)
        actions, rewards = demo_context(demo, played)
        obs = env.observation().to(self.device) if env.obs_dim else None
        logits = self.student(actions.to(self.device), rewards.to(self.device), obs)
        d = demo.actions.shape[1]
        targets = played.actions.to(logits.device)
        current = logits[:, d:]
        loss = ad_loss(current, targets)
        agreement = (current[:, : targets.shape[1]].argmax(-1) == targets).float().mean()
        return {"loss": loss, "teacher_agreement": agreement}
