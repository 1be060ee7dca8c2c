"""``PolicyModule``: the base of the in-context bandit methods (``policy.dpt``, ``policy.ad``).

The student is an in-context policy (:class:`nbdistill.models.ICTransformer`, or any module with its
call ``student(actions [N, T], rewards [N, T], obs, extra) -> logits [N, T + 1, K]``); the data are
bandit tasks (:mod:`nbdistill.data.bandits`: batches ``(task rows, best arms)``, ``.make_env``). Each
training step plays a fresh in-context dataset on the batch's tasks (:meth:`PolicyModule.play`,
seeded by the step, so a resumed run plays the same ones) and the method scores the student's
logits on it. The teacher is an algorithm named by a hyper-parameter, not a network. The evaluation
(:class:`~.evaluation.RegretEvaluation`) deploys the student online on unseen tasks.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.module import DistillModule
from ...core.registry import HParam
from .algorithms import BanditAlgorithm, make_algorithm, suits
from .evaluation import RegretEvaluation
from .rollout import Trajectory, run_algorithm

#: The views of every in-context bandit method.
POLICY_VIEWS = ("losses", "policy_regret", "policy_suboptimality", "policy_choices", "policy_horizon")
#: Algorithms whose per-arm statistics a student may read in context (EVOLvE's algorithm-guided support).
GUIDES = ("none", "ucb", "thompson", "greedy", "linucb")


class PolicyModule(DistillModule):
    """Base of the in-context bandit methods: a transformer student, bandit tasks, an algorithm teacher."""

    lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate")
    weight_decay = HParam(float, 1e-4, 0.0, 0.1, help="Adam weight decay (DPT: AdamW 1e-4)")
    context = HParam(int, 0, 0, 100_000, help="transitions in each training context; 0: the tasks' horizon")
    guide = HParam(
        str, "none", choices=GUIDES, help="an algorithm whose per-arm statistics the student reads in context (EVOLvE)"
    )
    eval_tasks = HParam(int, 200, 1, 100_000, help="held-out tasks the student plays at each validation")
    eval_horizon = HParam(int, 0, 0, 100_000, help="steps each held-out task is played; 0: the tasks' horizon")
    evaluation_class = RegretEvaluation

    # -- the tasks ------------------------------------------------------------------------------
    def task_source(self) -> Any:
        """The data module of the tasks being fitted (it makes their environments)."""
        tasks = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        return tasks if tasks is not None else getattr(self, "_tasks", None)

    def context_length(self) -> int:
        return int(self.context) or int(self.task_source().horizon)

    def evaluation_horizon(self) -> int:
        return int(self.eval_horizon) or int(self.task_source().horizon)

    def make_guide(self) -> BanditAlgorithm | None:
        return None if self.guide == "none" else make_algorithm(self.guide)

    def step_generator(self) -> torch.Generator:
        """The generator of this step's in-context data: a function of the step (a resume replays it)."""
        return torch.Generator().manual_seed(1_000_003 * int(self.global_step) + 17)

    def play(self, x: torch.Tensor, policy: str) -> tuple[Any, Trajectory]:
        """The environment of the tasks ``x`` and a :meth:`context_length`-step trajectory of the
        algorithm ``policy`` on them (with the guide's statistics when there is one)."""
        env = self.task_source().make_env(x.detach().cpu())
        generator = self.step_generator()
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        return env, run_algorithm(
            make_algorithm(policy), env, self.context_length(), generator, seed=seed, guide=self.make_guide()
        )

    def student_logits_on(self, env: Any, trajectory: Trajectory) -> torch.Tensor:
        """The student's logits ``[N, T + 1, K]`` on a played trajectory (its context)."""
        device = self.device
        obs = env.observation().to(device) if env.obs_dim else None
        guides = trajectory.guides.to(device) if trajectory.guides is not None else None
        return self.student(trajectory.actions.to(device), trajectory.rewards.to(device), obs, guides)

    # -- checks before training -----------------------------------------------------------------
    def context_policies(self) -> tuple[str, ...]:
        """The algorithms this method plays its training contexts with (checked against the tasks)."""
        return ()

    def check_data(self, data: Any) -> None:
        """The tasks make environments; the context fits in the horizon and in the student; the student
        reads these tasks' actions (and the guide's statistics); every algorithm suits the tasks."""
        if not callable(getattr(data, "make_env", None)) or getattr(data, "horizon", None) is None:
            raise ConfigError(
                f"{self.method_name} plays bandit tasks: give it a data module with make_env() and a horizon, "
                f"e.g. nbdistill.data.BernoulliBandits(arms=5, horizon=50); got {type(data).__name__}"
            )
        self._tasks = data
        horizon = int(data.horizon)
        if int(self.context) > horizon:
            raise ConfigError(
                f"the context ({self.context} transitions) is longer than the tasks' horizon ({horizon}): lower "
                f"context to at most {horizon}, or make tasks with horizon={self.context}"
            )
        longest = max(self.context_length(), self.evaluation_horizon() - 1)
        limit = getattr(self.student, "max_context", None)
        if limit is not None and longest > int(limit):
            raise ConfigError(
                f"the student reads at most {limit} transitions but this run gives it contexts of {longest} (training "
                f"context {self.context_length()}, evaluation horizon {self.evaluation_horizon()}): build it with "
                f"max_context={longest}, or shorten the horizon"
            )
        data.setup()
        env = data.make_env(data.tasks("train")[:2])
        for name in (*self.context_policies(), self.guide):
            if name != "none" and not suits(name, env):
                raise ConfigError(f"{name} cannot play {type(env).__name__} tasks (LinUCB needs arm features: LinearBandits)")
        self.probe_student(env)

    def probe_student(self, env: Any) -> None:
        """Run the student on a 3-transition context of ``env``; a ConfigError naming what does not fit."""
        actions = torch.zeros(env.num_envs, 3, dtype=torch.long)
        rewards = torch.zeros(env.num_envs, 3)
        guide = self.make_guide()
        extra = None
        if guide is not None:
            guide.reset(env)
            extra = guide.guide().flatten(1)[:, None].expand(-1, 4, -1)
        obs = env.observation() if env.obs_dim else None
        try:
            with torch.no_grad():
                logits = self.student(actions.to(self.device), rewards.to(self.device), obs, extra)
        except ConfigError:
            raise
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(
                f"the student cannot read a bandit history of these tasks ({env.num_actions} arms, observation size "
                f"{env.obs_dim}{', guide statistics ' + str(extra.shape[-1]) if extra is not None else ''}): {exc}; build "
                f"e.g. nbdistill.models.ICTransformer(num_actions={env.num_actions}, max_context=..., obs_dim={env.obs_dim}"
                f"{', extra_dim=' + str(extra.shape[-1]) if extra is not None else ''})"
            ) from exc
        expected = (env.num_envs, 4, env.num_actions)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ConfigError(
                f"the student must return logits [tasks, transitions + 1, actions] = {list(expected)} on these tasks, got "
                f"{list(got) if isinstance(got, tuple) else got}: the tasks have {env.num_actions} arms (build it with "
                f"num_actions={env.num_actions})"
            )
