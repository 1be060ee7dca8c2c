r"""The KD comparison table: every method's student accuracy over seeds, beside the student trained
alone and the teacher.

For each method: mean ± standard deviation (ddof = 1) of the student's *last-epoch* test accuracy
over the seeds, the share of the teacher–student gap it closes,

.. math::
    \text{gap closed} = \frac{\overline{acc}_{method} - \overline{acc}_{student\ only}}{acc_{teacher} - \overline{acc}_{student\ only}},

(negative when the method does worse than training the student alone) and the wall time per
epoch (training and validation, measured from the run folder).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

COLUMNS = ["method", "student_acc_mean", "student_acc_std", "gap_closed", "seconds_per_epoch", "seeds"]
BASELINE = "kd.student_only"


@dataclass
class Result:
    """One run: ``method``, ``seed``, the student's and teacher's test accuracy, seconds per epoch."""

    method: str
    seed: int
    student_acc: float
    teacher_acc: float
    seconds_per_epoch: float


def gap_closed(acc_method: float, acc_student_only: float, acc_teacher: float) -> float:
    """``(acc_method − acc_student_only) / (acc_teacher − acc_student_only)``; NaN when the teacher is no better."""
    gap = acc_teacher - acc_student_only
    return (acc_method - acc_student_only) / gap if gap > 0 else float("nan")


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


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
        accs = [r.student_acc for r in rs]
        mean = statistics.fmean(accs)
        rows.append(
            [
                method,
                mean,
                _std(accs),
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


def seconds_per_epoch(run, epochs: int) -> float:
    """Wall time of a finished run (``run.json`` start to end) divided by its epochs."""
    started, ended = run.info.get("started"), run.info.get("ended")
    return (ended - started) / epochs if started and ended else float("nan")


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
    per seed and collect the test accuracies. ``make_student(seed)`` builds a fresh student (the same
    initial weights for every method of a seed), ``make_data(seed)`` the data module,
    ``hparams[method]`` overrides a method's defaults; ``fit_kwargs`` go to :func:`nbdistill.fit`."""
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
            metrics = run.metrics
            result = Result(
                method,
                seed,
                metrics["test/student_acc"],
                metrics.get("test/teacher_acc", float("nan")),
                seconds_per_epoch(run, max_epochs),
            )
            results.append(result)
            if progress is not None:
                progress(result)
    return results
