r"""The KD comparison table: every method's student accuracy over seeds, beside the student trained
alone and the teacher.

For each method: mean ± sample standard deviation (:func:`sample_std`, ddof = 1) of the student's
*last-epoch* test accuracy over the seeds, the share of the teacher–student gap it closes,

.. math::
    \text{gap closed} = \frac{\overline{acc}_{method} - \overline{acc}_{student\ only}}{acc_{teacher} - \overline{acc}_{student\ only}},

(negative when the method does worse than training the student alone) and the wall time per
epoch (training and validation, measured from the run folder).

This is the one implementation of the comparison: ``bench/kd_compare.py``, the tutorials and
``nbdistill demo`` (:mod:`nbdistill.demo`, which adds agreement, KL and per-seed wins to the same
numbers) all train and summarise through it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COLUMNS = ["method", "student_acc_mean", "student_acc_std", "gap_closed", "seconds_per_epoch", "seeds"]
BASELINE = "kd.student_only"


@dataclass
class Result:
    """One run: ``method``, ``seed``, the student's and teacher's test accuracy, seconds per epoch,
    and the :class:`~nbdistill.core.run.Run` itself when it came from one (for curves and other metrics)."""

    method: str
    seed: int
    student_acc: float
    teacher_acc: float
    seconds_per_epoch: float
    run: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_run(cls, run: Any, method: str | None = None, seed: int = 0, epochs: int | None = None) -> Result:
        """The result of a finished run, read from its metrics (``test/student_acc``, ``test/teacher_acc``;
        NaN when the run logged no teacher). ``method`` defaults to the run's, ``epochs`` to its ``max_epochs``."""
        metrics = run.metrics
        return cls(
            method or run.method,
            seed,
            float(metrics["test/student_acc"]),
            float(metrics.get("test/teacher_acc", math.nan)),
            seconds_per_epoch(run, epochs or run.max_epochs),
            run,
        )


def gap_closed(acc_method: float, acc_student_only: float, acc_teacher: float) -> float:
    """``(acc_method − acc_student_only) / (acc_teacher − acc_student_only)``; NaN when the teacher is no better."""
    gap = acc_teacher - acc_student_only
    return (acc_method - acc_student_only) / gap if gap > 0 else float("nan")


def sample_std(values: Sequence[float]) -> float:
    r"""The sample standard deviation of ``values`` (Bessel's correction, ddof = 1), NaN for fewer than two:

    .. math::
        s = \sqrt{\frac{1}{n - 1} \sum_{i=1}^{n} (x_i - \bar{x})^2}.

    The "± std" of every table here. The seeds are a sample of the runs one could make, and the
    question is how much another run would differ: dividing by ``n − 1`` gives the unbiased estimate
    of that variance (``n`` would shrink it by :math:`\sqrt{(n-1)/n}`, 11 % at 5 seeds, 29 % at 2).
    One run says nothing about the spread, so its std is NaN (not 0, which would claim that every seed
    gives the same number); the tables then print the mean alone.
    """
    return statistics.stdev(values) if len(values) > 1 else math.nan


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample_std)`` of ``values``."""
    return statistics.fmean(values), sample_std(values)


def comparison_rows(results: Iterable[Result], baseline: str = BASELINE) -> tuple[list[list[Any]], float]:
    """Rows of ``COLUMNS`` (the teacher first, then the baseline, then the methods in order of first
    appearance) and the teacher's accuracy (its mean over the runs: a frozen teacher is the same in all)."""
    by_method: dict[str, list[Result]] = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    if baseline not in by_method:
        raise ValueError(f"the comparison needs the {baseline} baseline among the results")
    teacher = statistics.fmean(r.teacher_acc for rs in by_method.values() for r in rs)
    base = statistics.fmean(r.student_acc for r in by_method[baseline])
    rows: list[list[Any]] = [["teacher", teacher, 0.0, 1.0, float("nan"), 0]]
    order = [baseline] + [m for m in by_method if m != baseline]
    for method in order:
        rs = by_method[method]
        mean, std = mean_std([r.student_acc for r in rs])
        rows.append(
            [
                method,
                mean,
                std,
                gap_closed(mean, base, teacher),
                statistics.fmean(r.seconds_per_epoch for r in rs),
                len(rs),
            ]
        )
    return rows, teacher


def format_table(rows: Sequence[Sequence[Any]]) -> str:
    """The rows as a Markdown table (accuracy in %, gap closed in %)."""
    lines = ["| method | student acc (%) | gap closed | s / epoch | seeds |", "|---|---|---|---|---|"]
    for method, mean, std, closed, seconds, seeds in rows:
        acc = f"{100 * mean:.2f}" + ("" if not math.isfinite(std) or method == "teacher" else f" ± {100 * std:.2f}")
        closed_s = "—" if not math.isfinite(closed) else f"{100 * closed:+.0f} %"
        sec = "—" if not math.isfinite(seconds) else f"{seconds:.2f}"
        lines.append(f"| {method} | {acc} | {closed_s} | {sec} | {seeds or '—'} |")
    return "\n".join(lines)


def comparison_event(rows: Sequence[Sequence[Any]], **extra: Any) -> dict:
    """A ``table`` event named ``comparison``, what the ``comparison`` view draws."""
    return {
        "step": 0,
        "epoch": 0,
        "time": time.time(),
        "kind": "table",
        "name": "comparison",
        "columns": COLUMNS,
        "rows": [list(r) for r in rows],
        **extra,
    }


def seconds_per_epoch(run, epochs: int | None) -> float:
    """Wall time of a finished run (``run.json`` start to end) divided by its epochs (NaN when unknown)."""
    started, ended = run.info.get("started"), run.info.get("ended")
    return (ended - started) / epochs if started and ended and epochs else float("nan")


def run_comparison(
    methods: Sequence[str],
    make_student: Callable[[int], Any],
    teacher: Any,
    make_data: Callable[[int], Any],
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    max_epochs: int = 20,
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[Result], None] | None = None,
    baseline: bool = True,
    **fit_kwargs: Any,
) -> list[Result]:
    """Fit the student-only baseline (unless ``baseline=False``) and every method of ``methods`` once
    per seed and collect the test accuracies, method by method, seed by seed (each :class:`Result`
    keeps its run). ``make_student(seed)`` builds a fresh student (the same initial weights for every
    method of a seed), ``make_data(seed)`` the data module, ``hparams[method]`` overrides a method's
    defaults; ``progress(result)`` is called after each run; ``fit_kwargs`` go to :func:`nbdistill.fit`."""
    from ...core.fit import fit

    results = []
    names = ([BASELINE] if baseline else []) + [m for m in methods if m != BASELINE]
    for method in names:
        for seed in seeds:
            run = fit(
                method,
                student=make_student(seed),
                teacher=teacher,
                data=make_data(seed),
                max_epochs=max_epochs,
                seed=seed,
                **dict((hparams or {}).get(method, {})),
                **fit_kwargs,
            )
            result = Result.from_run(run, method, seed, max_epochs)
            results.append(result)
            if progress is not None:
                progress(result)
    return results
