"""What "the gap" is in the policy family: the student's regret on unseen tasks, beside its teachers'.

:class:`RegretEvaluation` gathers the held-out tasks of the validation (or test) split, deploys the
student online on ``module.eval_tasks`` of them for ``module.evaluation_horizon`` steps (acting from
its own history, :func:`.rollout.run_model`, with the same reward noise every epoch) and logs the
cumulative regret ``R_T`` at the end (mean and standard error over tasks) and the share of optimal
actions. The classic algorithms (:data:`BASELINES`) play the same tasks with the same noise once per
horizon; their curves are written beside the student's for the ``policy_regret`` view.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.evaluation import Evaluation
from .algorithms import make_algorithm, suits
from .rollout import Trajectory, run_algorithm, run_model

#: Seed of the held-out tasks' rewards and of any sampled action: the same every epoch.
EVAL_SEED = 0
#: The algorithms every student is compared with (those that suit the tasks: LinUCB needs features).
BASELINES = ("random", "greedy", "ucb", "thompson", "linucb")


def regret_summary(trajectory: Trajectory) -> dict[str, Any]:
    """Cumulative regret per step (mean and standard error over tasks), the final one, per-step
    sub-optimality and the share of optimal actions, from a played :class:`~.rollout.Trajectory`."""
    cumulative = trajectory.cumulative_regret().double()
    n = cumulative.shape[0]
    se = cumulative.std(0, unbiased=True) / n**0.5 if n > 1 else torch.zeros(cumulative.shape[1], dtype=cumulative.dtype)
    optimal = trajectory.optimal
    return {
        "curve": cumulative.mean(0).tolist(),
        "curve_se": se.tolist(),
        "suboptimality": trajectory.regret.double().mean(0).tolist(),
        "regret": float(cumulative[:, -1].mean()),
        "regret_se": float(se[-1]),
        "optimal_rate": float((trajectory.actions == optimal[:, None]).double().mean()) if optimal is not None else float("nan"),
    }


def rank_choices(trajectory: Trajectory, means: torch.Tensor) -> list[list[float]]:
    """``[T][K]``: at each step, the share of tasks that played their best, second best, ... arm (arms
    ranked by their true means, so tasks with different best arms share one heat map)."""
    order = means.argsort(-1, descending=True)
    rank_of = order.argsort(-1)  # rank_of[i, a] = rank of arm a in task i
    ranks = rank_of.gather(1, trajectory.actions)
    k = means.shape[1]
    counts = torch.nn.functional.one_hot(ranks, k).double().mean(0)
    return counts.tolist()


class RegretEvaluation(Evaluation):
    """Online regret of the student on held-out tasks, and of the classic algorithms (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.baselines: dict[tuple, dict[str, dict[str, Any]]] = {}

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ConfigError(
                f"{module.method_name} needs batches of tasks (x, y): x a [tasks, parameters] tensor, y the best arms; "
                "use e.g. nbdistill.data.BernoulliBandits()"
            )

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        self.outputs.setdefault(stage, []).append(batch[0].detach().cpu())

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.outputs.pop(stage, [])
        if not parts:
            return {}
        tasks = module.task_source()
        x = torch.cat(parts)[: int(module.eval_tasks)]
        horizon = module.evaluation_horizon()
        env = tasks.make_env(x)
        played = self.play_student(module, env, horizon)
        metrics = {**regret_summary(played), "horizon": horizon, "tasks": len(x)}
        metrics["choices"] = rank_choices(played, env.expected_rewards())
        key = (stage, horizon, len(x), float(x.sum()))
        if key not in self.baselines:
            self.baselines = {key: self.play_baselines(env, horizon)}
        metrics["baselines"] = self.baselines[key]
        return metrics

    def play_student(self, module: Any, env: Any, horizon: int) -> Trajectory:
        """The student deployed online on ``env`` for ``horizon`` steps, with the evaluation's fixed noise."""
        generator = torch.Generator().manual_seed(EVAL_SEED)
        return run_model(module.student, env, horizon, generator, seed=EVAL_SEED, guide=module.make_guide())

    @staticmethod
    def play_baselines(env: Any, horizon: int) -> dict[str, dict[str, Any]]:
        out = {}
        for name in BASELINES:
            if suits(name, env):
                generator = torch.Generator().manual_seed(EVAL_SEED)
                out[name] = regret_summary(run_algorithm(make_algorithm(name), env, horizon, generator, seed=EVAL_SEED))
        return out

    def scalars(self, module: Any, metrics: dict[str, Any]) -> dict[str, float]:
        return {k: float(metrics[k]) for k in ("regret", "regret_se", "optimal_rate") if k in metrics}

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        """``<stage>/regret/<who>`` cumulative-regret curves (``se`` the standard errors) for the student and
        every baseline, ``<stage>/suboptimality/<who>`` and the student's rank-choice table."""
        if "curve" not in metrics:
            return
        step = module.global_step
        steps = list(range(1, metrics["horizon"] + 1))
        curves = {"student": metrics, **metrics.get("baselines", {})}
        for who, summary in curves.items():
            label = f"student ({module.method_name})" if who == "student" else who
            extra = {"context": module.context_length()} if who == "student" else {}
            writer.points(
                f"{stage}/regret/{who}", steps, summary["curve"], label=label, step=step, se=summary["curve_se"], **extra
            )
            writer.points(f"{stage}/suboptimality/{who}", steps, summary["suboptimality"], label=label, step=step)
        k = len(metrics["choices"][0]) if metrics["choices"] else 0
        writer.table(f"{stage}/choices/student", [f"rank {r + 1}" for r in range(k)], metrics["choices"], step=step)
