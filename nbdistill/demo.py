"""``run_demo``: Hinton KD against the student trained alone, over several seeds, measured from the runs.

The setting (:data:`SETTING`) is the one where distillation visibly helps on the embedded digits:
the plain 64-32-10 MLP student sees only **100 labelled training examples** (10 per class) while
the teacher (``digits-mlp``, 97.2 % test accuracy) was trained on all 1 078. With every label the
student alone already matches the teacher (≈ 0.97 both), so there is no gap for KD to close; with
100 labels the student alone memorises them and stops near 0.88, while the teacher's soft targets
on the same 100 images — ten graded probabilities per image instead of one label — tell it how
each digit resembles the others, and it reaches ≈ 0.93 (Hinton, Vinyals & Dean 2015, §6
"soft targets as regularizers").

Every number :func:`run_demo` prints, plots and returns is read back from the run folders
(``Run.metrics``), never typed in. The runs are trained and summarised by the KD comparison,
:mod:`nbdistill.families.kd.compare` (``run_comparison``, ``comparison_rows``): the same seeds,
means, sample standard deviations (ddof = 1 over seeds; see ``compare.sample_std`` for why) and
gap closed as ``bench/kd_compare.py``; this module adds agreement, KL, per-seed wins, the text
table and the figure.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .families.kd import compare

#: The demo's setting: same student as the tutorials, few labels, the Hinton defaults T = 4, α = 0.1.
SETTING: dict[str, Any] = {
    "teacher": "digits-mlp",
    "hidden": (32,),
    "n_train": 100,
    "batch_size": 64,
    "epochs": 60,
    "temperature": 4.0,
    "alpha": 0.1,
}
#: What ``quick=True`` shrinks: at most this many seeds, and this many epochs unless given.
QUICK = {"seeds": 2, "epochs": 30}

BASELINE = "kd.student_only"
KD = "kd.hinton"
METHODS = (BASELINE, KD)
LABELS = {BASELINE: "student alone", KD: "Hinton KD"}
COLORS = {BASELINE: "tab:orange", KD: "tab:blue"}


def make_student(seed: int, hidden: Sequence[int] = SETTING["hidden"]):
    """A fresh ``MLP(64, hidden, 10)`` whose initial weights depend only on ``seed``."""
    import pytorch_lightning as pl

    from .models import MLP

    pl.seed_everything(seed, verbose=False)
    return MLP(64, list(hidden), 10)


def make_data(n_train: int | None = SETTING["n_train"], batch_size: int = SETTING["batch_size"]):
    """The demo's digits: ``n_train`` labelled training examples (stratified), the usual val/test split."""
    from .data import Digits

    return Digits(batch_size=batch_size, n_train=n_train)


def _comparison_setup(setting: Mapping[str, Any], **kd_hparams: Any) -> dict[str, Any]:
    """What :func:`~nbdistill.families.kd.compare.run_comparison` needs for ``setting``: the student and
    data factories and the KD hyper-parameters (the setting's T and alpha, overridden by ``kd_hparams``)."""
    return {
        "make_student": lambda seed: make_student(seed, setting["hidden"]),
        "make_data": lambda seed: make_data(setting["n_train"], setting["batch_size"]),
        "hparams": {KD: {"temperature": setting["temperature"], "alpha": setting["alpha"], **kd_hparams}},
    }


def fit_one(
    method: str, seed: int, teacher, epochs: int, runs_root=None, setting: Mapping[str, Any] = SETTING, **kd_hparams: Any
):
    """One run: ``method`` (:data:`BASELINE` or :data:`KD`) from the seed's initial weights and data order.

    The teacher is passed to the student-alone run too: there it only *measures* agreement and
    KL, it never enters the loss. ``kd_hparams`` override the setting's T and alpha for KD.
    Trained by :func:`~nbdistill.families.kd.compare.run_comparison`, as the demo's runs are.
    """
    (result,) = compare.run_comparison(
        [method],
        teacher=teacher,
        seeds=(seed,),
        max_epochs=epochs,
        baseline=method == BASELINE,
        runs_root=runs_root,
        **_comparison_setup(setting, **kd_hparams),
    )
    return result.run


def summarize(runs: Mapping[str, Sequence[Any]], baseline: str = BASELINE, method: str = KD) -> dict:
    """Gap table numbers from finished runs: ``runs[method][i]`` is the run of seed ``i``.

    The accuracies, their mean ± std, the teacher's accuracy and the gap closed are
    :mod:`~nbdistill.families.kd.compare`'s (:func:`~nbdistill.families.kd.compare.comparison_rows`;
    std is the sample std over seeds, ddof = 1, NaN for one seed: see
    :func:`~nbdistill.families.kd.compare.sample_std`). Per method: the per-seed lists and the
    mean/std of ``test/student_acc`` and ``test/agreement``, the mean ``test/kl`` and
    ``test/teacher_acc``. Overall: the teacher's accuracy (mean over all runs), the share of the
    teacher–student gap that ``method`` closes,
    ``(acc_method − acc_baseline) / (acc_teacher − acc_baseline)`` on the seed means, and on how
    many seeds ``method`` beats ``baseline`` in test accuracy and in agreement.
    """
    results = {name: [compare.Result.from_run(r, name, seed) for seed, r in enumerate(rs)] for name, rs in runs.items()}
    rows, teacher_acc = compare.comparison_rows([r for rs in results.values() for r in rs], baseline=baseline)
    by_method = {row[0]: dict(zip(compare.COLUMNS, row)) for row in rows}
    table: dict[str, dict] = {}
    for name, name_results in results.items():
        metrics = [r.run.metrics for r in name_results]
        row: dict[str, Any] = {"runs": [str(r.run.path) for r in name_results]}
        row["student_acc"] = [r.student_acc for r in name_results]
        row["agreement"] = [float(m["test/agreement"]) for m in metrics]
        row["kl"] = [float(m["test/kl"]) for m in metrics]
        row["teacher_acc"] = [r.teacher_acc for r in name_results]
        row["student_acc_mean"] = by_method[name]["student_acc_mean"]
        row["student_acc_std"] = by_method[name]["student_acc_std"]
        row["agreement_mean"], row["agreement_std"] = compare.mean_std(row["agreement"])
        row["kl_mean"] = statistics.fmean(row["kl"])
        row["teacher_acc_mean"] = statistics.fmean(row["teacher_acc"])
        table[name] = row
    base, kd = table[baseline], table[method]
    pairs_acc = list(zip(kd["student_acc"], base["student_acc"]))
    pairs_agr = list(zip(kd["agreement"], base["agreement"]))
    return {
        "methods": table,
        "baseline": baseline,
        "method": method,
        "seeds": len(pairs_acc),
        "teacher_acc": teacher_acc,
        "gap_closed": by_method[method]["gap_closed"],
        "wins": {
            "student_acc": sum(a > b for a, b in pairs_acc),
            "agreement": sum(a > b for a, b in pairs_agr),
            "ties": sum(a == b for a, b in pairs_acc),
        },
    }


def _mean_pm_std(mean: float, std: float) -> str:
    """``mean ± std`` in 17 characters; the mean alone when std is NaN (one seed)."""
    return f"{mean:>9.3f} ± {std:.3f}" if math.isfinite(std) else f"{mean:>9.3f}{'':8}"


def format_table(summary: Mapping[str, Any], title: str | None = None) -> str:
    """The gap table as text: one row per method, then gap closed and the per-seed wins and values."""
    lines = [title] if title else []
    header = f"{'method':<18}{'test acc':>17}{'agreement':>17}{'KL(t‖s)':>10}{'teacher acc':>13}"
    lines += [header, "-" * len(header)]
    for name, row in summary["methods"].items():
        lines.append(
            f"{name:<18}"
            f"{_mean_pm_std(row['student_acc_mean'], row['student_acc_std'])}"
            f"{_mean_pm_std(row['agreement_mean'], row['agreement_std'])}"
            f"{row['kl_mean']:>10.3f}{row['teacher_acc_mean']:>13.3f}"
        )
    n, wins = summary["seeds"], summary["wins"]
    closed = summary["gap_closed"]
    closed_text = "n/a (the student alone already reaches the teacher)" if math.isnan(closed) else f"{100 * closed:.0f} %"
    lines += [
        "",
        f"gap closed by {summary['method']}: {closed_text}",
        f"{summary['method']} beats {summary['baseline']} on {wins['student_acc']}/{n} seeds in test accuracy"
        f" ({wins['ties']} ties), on {wins['agreement']}/{n} in agreement",
        "",
        "per seed (test acc / agreement):",
    ]
    for name, row in summary["methods"].items():
        cells = "  ".join(f"{a:.3f}/{g:.3f}" for a, g in zip(row["student_acc"], row["agreement"]))
        lines.append(f"  {name:<16}{cells}")
    return "\n".join(lines)


def overlay(
    ax: Axes,
    runs: Mapping[str, Sequence[Any]],
    name: str = "val/student_acc",
    teacher: str | None = "val/teacher_acc",
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Axes:
    """Scalar ``name`` against the epoch for every run, one colour per group: thin lines per run,
    a thick line for the group's mean, and the teacher's value of ``teacher`` dashed."""
    colors = dict(COLORS, **(colors or {}))
    labels = dict(LABELS, **(labels or {}))
    teacher_drawn = False
    for group, group_runs in runs.items():
        curves = []
        for run in group_runs:
            events = [e for e in run.log.of(name) if e["kind"] == "scalar"]
            epochs = np.array([e["epoch"] + 1 for e in events])
            values = np.array([e["value"] for e in events])
            ax.plot(epochs, values, color=colors.get(group), alpha=0.25, lw=0.8)
            curves.append((epochs, values))
            if teacher and not teacher_drawn and run.log.last_value(teacher) is not None:
                ax.axhline(run.log.last_value(teacher), color="0.4", ls="--", lw=1, label="teacher")
                teacher_drawn = True
        if curves:
            length = min(len(v) for _, v in curves)
            mean = np.mean([v[:length] for _, v in curves], axis=0)
            ax.plot(curves[0][0][:length], mean, color=colors.get(group), lw=2, label=labels.get(group, group))
    ax.set_xlabel("epoch")
    ax.set_title(name, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def _per_seed(ax: Axes, summary: Mapping[str, Any], key: str, title: str) -> Axes:
    for name, row in summary["methods"].items():
        seeds = np.arange(len(row[key]))
        ax.plot(seeds, row[key], "o", color=COLORS.get(name), label=LABELS.get(name, name))
    table = summary["methods"]
    if summary["baseline"] in table and summary["method"] in table:
        for i, (a, b) in enumerate(zip(table[summary["baseline"]][key], table[summary["method"]][key])):
            ax.plot([i, i], [a, b], color="0.7", lw=1, zorder=0)
    if key == "student_acc":
        ax.axhline(summary["teacher_acc"], color="0.4", ls="--", lw=1, label="teacher")
    ax.set_xticks(np.arange(summary["seeds"]))
    ax.set_xlabel("seed")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_demo(runs: Mapping[str, Sequence[Any]], summary: Mapping[str, Any], title: str | None = None) -> Figure:
    """Test accuracy and agreement per seed, and the validation curves of every run overlaid."""
    fig = Figure(figsize=(13, 3.8))
    ax_acc, ax_agr, ax_val = fig.subplots(1, 3)
    _per_seed(ax_acc, summary, "student_acc", "test accuracy per seed")
    _per_seed(ax_agr, summary, "agreement", "test agreement with the teacher per seed")
    overlay(ax_val, runs, "val/student_acc")
    ax_val.set_title("validation accuracy while training", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def describe(setting: Mapping[str, Any], epochs: int, seeds: int) -> str:
    hidden = "-".join(str(h) for h in setting["hidden"])
    labels = "all" if setting["n_train"] is None else str(setting["n_train"])
    return (
        f"digits, student MLP 64-{hidden}-10, {labels} labelled examples, teacher {setting['teacher']}, "
        f"{epochs} epochs, T={setting['temperature']:g}, alpha={setting['alpha']:g}, {seeds} seeds"
    )


def run_demo(
    seeds: int = 5,
    epochs: int | None = None,
    out_png: str | os.PathLike | None = "nbdistill-demo.png",
    runs_root: str | os.PathLike | None = None,
    quick: bool = False,
    progress: bool = True,
    threads: int | None = 1,
) -> dict:
    """Train Hinton KD and the student alone in :data:`SETTING` for seeds ``0 … seeds−1``,
    print the gap table, save the figure to ``out_png`` (skipped when ``None``) and return the
    numbers (:func:`summarize`'s dict plus ``setting``, ``epochs``, ``table`` and ``png``).

    ``quick`` keeps at most 2 seeds and, unless ``epochs`` is given, trains 30 epochs.
    ``threads`` sets torch's intra-op threads while training (restored after; ``None`` leaves
    them): the networks are tiny, and on 2 busy cores 2 threads cost about 10 times the CPU of 1.
    """
    import torch
    from tqdm.auto import tqdm

    from .zoo import teacher as zoo_teacher

    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if quick:
        seeds = min(seeds, QUICK["seeds"])
    if epochs is None:
        epochs = QUICK["epochs"] if quick else SETTING["epochs"]
    teacher = zoo_teacher(SETTING["teacher"])
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    bar = tqdm(total=seeds * len(METHODS), desc="KD vs student alone", unit="run", disable=not progress)

    def advance(result: compare.Result) -> None:
        bar.set_postfix_str(f"seed {result.seed} {result.method} done")
        bar.update(1)

    try:
        results = compare.run_comparison(
            [KD],
            teacher=teacher,
            seeds=range(seeds),
            max_epochs=epochs,
            progress=advance,
            runs_root=runs_root,
            **_comparison_setup(SETTING),
        )
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)
    runs: dict[str, list] = {m: [r.run for r in results if r.method == m] for m in METHODS}

    summary = summarize(runs)
    title = describe(SETTING, epochs, seeds)
    table = format_table(summary, title=title)
    print(table)
    png = None
    if out_png is not None:
        png = str(Path(out_png))
        plot_demo(runs, summary, title=title).savefig(png, dpi=110, bbox_inches="tight")
        print(f"\nfigure: {png}")
    return {**summary, "setting": dict(SETTING), "epochs": epochs, "table": table, "png": png}
