"""The evaluation of ``policy.aacd``: the student (acting on its restricted observations), the privileged
teacher and a uniformly random policy, each played deterministically (the mean action) on held-out goals.

Scalars at each validation: ``student_return``, ``student_success``, ``teacher_return``, ``teacher_success``,
``random_return``, ``random_success`` (return: the episode's summed reward, mean over goals; success: the
share of episodes that end within the task's success radius). Events: ``<stage>/aacd_paths/<i>``, the
student's path on a few goals (``x``, ``y``: positions; ``goal``: the hidden goal).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.evaluation import Evaluation

#: paths written at each evaluation
PATHS = 6
#: seed of the evaluation episodes' observation noise (the same at every validation)
EVAL_SEED = 12_345


@torch.no_grad()
def act(env: Any, actor: nn.Module | None, reads_state: bool, seed: int = EVAL_SEED) -> dict[str, torch.Tensor]:
    """Play one episode of every env with the mean action of ``actor`` (on ``[p, g, t/T]`` when ``reads_state``,
    else on the observation); ``actor=None`` plays uniform random actions. Returns ``return`` ``[N]``,
    ``success`` ``[N]`` and ``path`` ``[T + 1, N, 2]``."""
    generator = torch.Generator().manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    total, path = torch.zeros(env.num_envs), [env.position.clone()]
    for t in range(env.horizon):
        if actor is None:
            action = 2 * torch.rand(env.num_envs, 2, generator=generator) - 1
        else:
            state = torch.cat([env.state(), torch.full((env.num_envs, 1), t / env.horizon)], -1)
            device = next(actor.parameters()).device
            action = actor((state if reads_state else obs).to(device)).cpu()
        obs, reward, _, _, info = env.step(action)
        total += reward
        path.append(env.position.clone())
    return {"return": total, "success": info["success"].float(), "path": torch.stack(path)}


class ReachEvaluation(Evaluation):
    """Mean return and success of the student, the teacher and a random policy on the held-out goals."""

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """Nothing to check: :meth:`AACD.build_parts` already probed the student."""

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        goals = (batch[0] if isinstance(batch, (list, tuple)) else batch).detach().cpu()
        seen = self.outputs.setdefault(stage, [])
        seed = EVAL_SEED + len(seen)
        student = act(module.make_env(goals), module.student, module.student_reads_state(), seed)
        teacher = act(module.make_env(goals), module.teacher_actor, True, seed)
        chance = act(module.make_env(goals), None, True, seed)
        seen.append({"student": student, "teacher": teacher, "random": chance, "goals": goals})

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        seen = self.outputs.pop(stage, [])
        if not seen:
            return {}
        metrics: dict[str, Any] = {}
        for who in ("student", "teacher", "random"):
            for what in ("return", "success"):
                metrics[f"{who}_{what}"] = float(torch.cat([s[who][what] for s in seen]).mean())
        metrics["paths"] = seen[0]["student"]["path"][:, :PATHS]
        metrics["goals"] = seen[0]["goals"][:PATHS]
        return metrics

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        for i, goal in enumerate(metrics.get("goals", [])):
            path = metrics["paths"][:, i]
            writer.points(
                f"{stage}/aacd_paths/{i}", path[:, 0].tolist(), path[:, 1].tolist(), step=module.global_step, goal=goal.tolist()
            )
