"""The quality-vs-steps table: each model's samples at each step count, measured against the data.

A *model* is a denoiser (sampled by :func:`.samplers.sample`, DDIM by default, from the same seeded
prior noise at every step count) or a ``draw(n, steps, generator) -> samples`` function (a method
whose student samples otherwise). For every ``(model, steps)`` the row holds
:func:`.metrics.sample_metrics` of ``n`` samples against the data and ``ms_per_1000``, the sampling
time per 1 000 samples (the median of ``repeats`` timed draws, after one untimed warm-up). The rows
feed :func:`.views.write_quality` and the ``score_quality_table`` view (:func:`quality_figure`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.run import EventLog
from .metrics import sample_metrics
from .samplers import sample
from .schedule import CosineVP, VPSchedule, make_schedule
from .views import write_quality

#: Step counts of the table: the students' few steps, the teacher's one to many.
STUDENT_STEPS, TEACHER_STEPS = (1, 2, 4), (1, 4, 50)
Draw = Callable[[int, int, torch.Generator], torch.Tensor]


def ddim_draw(denoiser: nn.Module, schedule: VPSchedule | str = "cosine", method: str = "ddim") -> Draw:
    """``draw(n, steps, generator)``: ``steps``-step samples of ``denoiser`` (DDIM unless ``method``)."""
    schedule = make_schedule(schedule)
    denoiser = denoiser.eval()

    def draw(n: int, steps: int, generator: torch.Generator) -> torch.Tensor:
        dim = getattr(denoiser, "dim", 2)
        return sample(denoiser, schedule, n, steps, method, generator, shape=(dim,))

    return draw


def _timed(draw: Draw, n: int, steps: int, seed: int, repeats: int) -> tuple[torch.Tensor, float]:
    with torch.no_grad():
        samples = draw(n, steps, torch.Generator().manual_seed(seed))  # also the warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            draw(n, steps, torch.Generator().manual_seed(seed))
            times.append(time.perf_counter() - start)
    return samples, 1000.0 * statistics.median(times) * 1000.0 / n


def quality_rows(
    models: Mapping[str, nn.Module | Draw],
    data: torch.Tensor,
    steps: Mapping[str, Sequence[int]] | Sequence[int] = STUDENT_STEPS,
    density: Any = None,
    n: int = 2000,
    seed: int = 0,
    repeats: int = 3,
    schedule: VPSchedule | str | None = None,
) -> list[dict[str, Any]]:
    """One row ``{"model", "steps", <metrics>, "ms_per_1000"}`` per model and step count.

    Args:
        models: name -> denoiser or ``draw`` function, in the table's order.
        data: held-out data points ``[N, ...]`` the samples are measured against.
        steps: the step counts, for all models or per model name (e.g. ``{"teacher": (1, 4, 50)}``; a
            model missing from the mapping gets :data:`STUDENT_STEPS`).
        density: the data's exact density (mode coverage, log-likelihood), if known.
        n, seed: samples per row and the seed of their prior noise (the same for every row).
        repeats: timed draws per row (the median is kept).
        schedule: the denoisers' noise schedule (cosine by default).
    """
    if not models:
        raise ConfigError("quality_rows needs at least one model")
    if repeats < 1 or n < 2:
        raise ConfigError(f"quality_rows needs repeats >= 1 and n >= 2, got repeats={repeats}, n={n}")
    schedule = make_schedule(schedule or CosineVP())
    flat_data = torch.as_tensor(data).reshape(len(data), -1).float()
    rows = []
    for name, model in models.items():
        counts = steps.get(name, STUDENT_STEPS) if isinstance(steps, Mapping) else steps
        draw = ddim_draw(model, schedule) if isinstance(model, nn.Module) else model
        for k in counts:
            samples, ms = _timed(draw, n, int(k), seed, repeats)
            flat = samples.reshape(len(samples), -1).float()
            row = {"model": name, "steps": int(k)}
            row.update(sample_metrics(flat, flat_data, density=density))
            row["ms_per_1000"] = ms
            rows.append(row)
    return rows


class _EventOnly:
    """A writer whose ``table`` returns the event instead of writing it."""

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> dict:
        return {"kind": "table", "name": name, "step": step, "epoch": 0, "time": 0.0, "columns": columns, "rows": rows}


def quality_log(rows: Sequence[Mapping[str, Any]]) -> EventLog:
    """An event log holding the ``quality`` table of ``rows``, as :func:`.views.write_quality` writes it to a
    run (draw it with the ``score_quality_table`` view), made at no run step (its title names none)."""
    return EventLog([write_quality(_EventOnly(), rows)])
