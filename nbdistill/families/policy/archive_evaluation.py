r"""What "the gap" is for archive distillation (``policy.archive``): the distilled policy against its archive.

At every validation (and on the test split at the end) :class:`ArchiveEvaluation` rolls the distilled
policy ``π(· | d)`` out once for every target ``d`` of the split (the cells' centres of
``nd.data.ArchiveTargets``) and inserts the outcomes into an empty grid like the archive's: the
*policy's archive*. It logs

- ``archive_coverage``, ``archive_qd_score``: the share of cells the archive fills and
  ``Σ_{filled c} f_c`` (fitnesses are in ``[0, 1]``, so no offset);
- ``policy_coverage``, ``policy_qd_score``: the same for the policy's archive, i.e. the share of the
  cells the distilled policy reaches (from any target) and the best fitness it shows in each;
- ``policy_hit_rate``: the share of targets whose episode ends in the target's own cell;
- ``policy_distance``: ``E_d ‖d_reached - d‖``, the authors' "distance to descriptor" of the actor;
- ``random_coverage``: ``policy_coverage`` of a freshly initialised actor of the same architecture
  (seeded, computed once), the floor the distillation has to beat.

Where nbdistill differs: the authors (``main_dcg_me.py::evaluate_actor``) condition the actor on the
archive's elites' descriptors and sum its fitness over the filled cells whether or not it reaches
them; here it is asked for every cell's centre and scored where it lands, so that coverage means
cells reached and empty cells count too.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.evaluation import Evaluation
from .map_elites import GridArchive

#: Seed of the freshly initialised actor behind ``random_coverage``.
RANDOM_ACTOR_SEED = 0


def grid_values(archive: GridArchive) -> list[list[float]]:
    """``[g][g]`` the archive's fitness per cell (rows ``y``, columns ``x``), NaN where empty."""
    values = archive.fitness.double().clone()
    values[~archive.filled] = float("nan")
    return values.reshape(archive.grid, archive.grid).tolist()


def random_actor(student: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``student`` with its layers re-initialised from :data:`RANDOM_ACTOR_SEED`."""
    actor = copy.deepcopy(student)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_ACTOR_SEED)
        for layer in actor.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    return actor


class ArchiveEvaluation(Evaluation):
    """The distilled policy's coverage and QD-score beside its archive's (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.random_coverage: dict[tuple, float] = {}

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(
                f"policy.archive needs batches of target descriptors (x [N, 2] floats, y zeros), got {shape}; "
                "use nd.data.ArchiveTargets()"
            )

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        self.outputs.setdefault(stage, []).append(batch[0].detach().cpu())

    def policy_archive(self, module: Any, targets: torch.Tensor, actor: torch.nn.Module | None = None):
        """The episodes of ``π(· | d)`` for ``targets`` and the grid archive of their outcomes."""
        episodes = module.play_actor(targets, actor)
        grid = GridArchive(module.archive.grid, 0, module.archive.low, module.archive.high)
        grid.insert(torch.zeros(len(targets), 0), episodes.descriptors, episodes.fitness)
        return episodes, grid

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.outputs.pop(stage, [])
        if not parts:
            return {}
        targets = torch.cat(parts)
        episodes, reached = self.policy_archive(module, targets)
        key = (tuple(targets.shape), module.archive.grid, module.horizon)
        if key not in self.random_coverage:
            self.random_coverage[key] = self.policy_archive(module, targets, random_actor(module.student))[1].coverage()
        hits = module.archive.cell_index(episodes.descriptors) == module.archive.cell_index(targets)
        return {
            "archive_coverage": module.archive.coverage(),
            "archive_qd_score": module.archive.qd_score(),
            "policy_coverage": reached.coverage(),
            "policy_qd_score": reached.qd_score(),
            "policy_hit_rate": float(hits.double().mean()),
            "policy_distance": float(torch.linalg.vector_norm(episodes.descriptors - targets, dim=1).double().mean()),
            "random_coverage": self.random_coverage[key],
            "archive_map": grid_values(module.archive),
            "policy_map": grid_values(reached),
            "reached": episodes.descriptors.tolist(),
            "targets": targets.tolist(),
        }

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        """The two heat maps (``histogram`` events ``<stage>/archive_map`` and ``<stage>/policy_map``:
        ``counts`` ``[g][g]`` fitness per cell, NaN where empty, ``edges``/``y_edges`` the cells' bounds)
        and where the policy lands (``points`` ``<stage>/policy_reached``: ``x``, ``y`` reached,
        ``target_x``, ``target_y`` asked for)."""
        archive, step = module.archive, module.global_step
        edges = torch.linspace(archive.low, archive.high, archive.grid + 1).tolist()
        for name in ("archive_map", "policy_map"):
            writer.histogram(f"{stage}/{name}", metrics[name], edges=edges, y_edges=edges, step=step, values="fitness")
        reached, targets = torch.tensor(metrics["reached"]), torch.tensor(metrics["targets"])
        writer.points(
            f"{stage}/policy_reached",
            reached[:, 0].tolist(),
            reached[:, 1].tolist(),
            step=step,
            target_x=targets[:, 0].tolist(),
            target_y=targets[:, 1].tolist(),
        )
