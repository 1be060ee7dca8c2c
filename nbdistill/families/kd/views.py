"""Views of the knowledge-distillation family, registered with :func:`nbdistill.core.views.view`.

Each is a pure function ``view(ax, log) -> ax`` drawing run events (see :mod:`nbdistill.core.views`):

- ``gap_overlay``: validation student accuracy, agreement and the teacher's accuracy over
  training; give it a mapping ``{label: EventLog}`` to overlay several runs.
- ``agreement_matrix``: teacher prediction (rows) against student prediction (columns), from the
  ``test`` or latest ``val`` ``agreement_matrix`` table.
- ``efficiency``: teacher and student on a roofline drawn from the machine's measured peak.
- ``comparison``: the comparison table (mean ± std over seeds, gap closed, time per epoch).
- ``robustness`` and ``mtard_balance`` (kd.mtard), ``generations`` (kd.self_gt).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, TITLE_SIZE, decimate, empty, style_axes
from ...core.views import view


def _last_table(log: EventLog, *names: str) -> dict | None:
    for name in names:
        for event in reversed(log.of(name)):
            if event.get("kind") == "table" and event.get("rows") is not None:
                return event
    return None


@view("gap_overlay")
def gap_overlay(ax: Axes, logs: EventLog | Mapping[str, EventLog], stage: str = "val") -> Axes:
    """Student accuracy (solid) and agreement (dotted) of each run over training; the teacher's
    accuracy dashed. One ``EventLog`` draws one run; ``{label: EventLog}`` overlays runs."""
    if isinstance(logs, EventLog):
        logs = {"student": logs}
    title = f"teacher–student gap over training ({stage})"
    drawn, teacher_acc, colors = 0, [], iter(f"C{i}" for i in range(100))
    for label, log in logs.items():
        steps, acc = log.scalars(f"{stage}/student_acc")
        if not steps:
            continue
        color = next(colors)
        xs, ys = decimate(steps, acc)
        ax.plot(xs, ys, color=color, lw=1.4, label=f"{label} ({acc[-1]:.3f})")
        a_steps, agreement = log.scalars(f"{stage}/agreement")
        if a_steps:
            ax.plot(*decimate(a_steps, agreement), color=color, lw=1.0, ls=":")
        t = log.last_value(f"{stage}/teacher_acc")
        if t is not None:
            teacher_acc.append(t)
        drawn += 1
    if not drawn:
        return empty(ax, title, "waiting for data…" if logs else "no runs to compare")
    if teacher_acc:
        ax.axhline(float(np.mean(teacher_acc)), color="0.3", ls="--", lw=1.0, label=f"teacher ({np.mean(teacher_acc):.3f})")
    style_axes(ax, title, ylabel="accuracy (dotted: agreement)")
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right", framealpha=0.85)
    return ax


@view("agreement_matrix")
def agreement_matrix(ax: Axes, log: EventLog) -> Axes:
    """Row-normalised counts of (teacher prediction, student prediction), diagonal = agreement."""
    event = _last_table(log, "test/agreement_matrix", "val/agreement_matrix")
    if event is None:
        return empty(ax, "teacher vs student predictions")
    counts = np.asarray(event["rows"], dtype=float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    n = len(counts)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(
                        j,
                        i,
                        int(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=LEGEND_SIZE - 1,
                        color="white" if share[i, j] > 0.6 else "0.2",
                    )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.tick_params(labelsize=LEGEND_SIZE)
    ax.set_xlabel("student prediction", fontsize=LEGEND_SIZE + 1)
    ax.set_ylabel("teacher prediction", fontsize=LEGEND_SIZE + 1)
    agree = np.trace(counts) / max(counts.sum(), 1)
    stage = event["name"].split("/")[0]
    ax.set_title(f"teacher vs student ({stage}, agreement {agree:.3f})", fontsize=TITLE_SIZE)
    return ax


@view("efficiency")
def efficiency(ax: Axes, log: EventLog) -> Axes:
    """Models at (arithmetic intensity, achieved FLOP/s) under the roofline min(peak, I·bandwidth).

    The bandwidth is a copy larger than the caches (DRAM): a model whose working set stays in
    cache can sit above the slanted roof."""
    event = _last_table(log, "efficiency")
    if event is None:
        return empty(ax, "efficiency (roofline)")
    cols = event["columns"]
    rows = [dict(zip(cols, r)) for r in event["rows"]]
    peak, bandwidth = float(event["peak_flops"]), float(event["bandwidth"])
    ridge = peak / bandwidth
    xs = np.array([r["intensity"] for r in rows], float)
    lo, hi = min(xs.min(), ridge) / 10, max(xs.max(), ridge) * 10
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(grid, np.minimum(peak, grid * bandwidth), color="0.3", lw=1.2)
    ax.text(grid[-1], peak, f"peak {peak / 1e9:.1f} GFLOP/s ", ha="right", va="bottom", fontsize=LEGEND_SIZE)
    ax.text(
        lo * 1.2, lo * 1.2 * bandwidth, f" {bandwidth / 1e9:.1f} GB/s", ha="left", va="bottom", fontsize=LEGEND_SIZE, rotation=30
    )
    for i, r in enumerate(rows):
        ax.scatter(r["intensity"], r["achieved_flops"], color=f"C{i}", zorder=3)
        # the label sits on the side of the point with more room (a narrow panel cell cuts it otherwise)
        left = np.log(r["intensity"] / lo) > np.log(hi / r["intensity"])
        ax.annotate(
            f"{r['model']}: {r['params']:,} params\n{r['flops_per_sample'] / 1e3:.1f} kFLOP, "
            f"{r['bytes_per_sample'] / 1e3:.1f} kB /sample\n{r['latency_ms']:.2f} ms a batch",
            (r["intensity"], r["achieved_flops"]),
            textcoords="offset points",
            xytext=(-6 if left else 6, 0),
            ha="right" if left else "left",
            va="center",
            fontsize=LEGEND_SIZE - 1,
            color=f"C{i}",
        )
    lowest = min(min(r["achieved_flops"] for r in rows), lo * bandwidth)
    ax.set_ylim(lowest / 3, peak * 2)  # room for the labels of the lowest point and the peak's
    style_axes(
        ax,
        f"efficiency (roofline, batch {event.get('batch_size', '?')})",
        xlabel="arithmetic intensity (FLOP/byte)",
        ylabel="FLOP/s",
    )
    return ax


@view("comparison")
def comparison(ax: Axes, log: EventLog) -> Axes:
    """Student accuracy mean ± std per method (bars), annotated with gap closed and s/epoch; the
    teacher and the student trained alone as reference lines."""
    event = _last_table(log, "comparison")
    if event is None:
        return empty(ax, "comparison")
    rows = [dict(zip(event["columns"], r)) for r in event["rows"]]
    teacher = next((r for r in rows if r["method"] == "teacher"), None)
    methods = [r for r in rows if r["method"] != "teacher"]
    y = np.arange(len(methods))[::-1]
    means = np.array([r["student_acc_mean"] for r in methods], float)
    stds = np.nan_to_num(np.array([r["student_acc_std"] for r in methods], float))
    colors = ["0.6" if r["method"] == "kd.student_only" else "tab:blue" for r in methods]
    ax.barh(y, means, xerr=stds, color=colors, alpha=0.85, error_kw={"lw": 1})
    low = max(0.0, float(np.min(means - stds)) - 0.05)
    high = max(float(np.max(means + stds)), teacher["student_acc_mean"] if teacher else 0) + 0.04
    for yi, r, mean, std in zip(y, methods, means, stds):
        closed = r["gap_closed"]
        note = (
            f" {mean:.3f}, {'—' if not math.isfinite(closed) else f'{100 * closed:+.0f}%'} gap, {r['seconds_per_epoch']:.2f} s/ep"
        )
        ax.text(mean + std, yi, note, va="center", fontsize=LEGEND_SIZE - 1, color="0.15")
    if teacher:
        ax.axvline(teacher["student_acc_mean"], color="0.2", ls="--", lw=1, label=f"teacher {teacher['student_acc_mean']:.3f}")
        ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    ax.set_yticks(y)
    ax.set_yticklabels([r["method"] for r in methods], fontsize=LEGEND_SIZE)
    ax.set_xlim(low, min(1.0, high) + 0.005 + 0.35 * (min(1.0, high) - low))
    seeds = max((r.get("seeds") or 0) for r in methods)
    style_axes(ax, f"student test accuracy, mean ± std over {seeds} seeds", xlabel="accuracy")
    return ax


@view("robustness")
def robustness(ax: Axes, log: EventLog, stage: str = "val") -> Axes:
    """kd.mtard: the student's clean and PGD accuracy over training; the teachers' as reference."""
    clean = log.scalars(f"{stage}/student_acc")
    pgd = log.scalars(f"{stage}/student_pgd_acc")
    if not pgd[0]:
        return empty(ax, "clean and PGD accuracy")
    ax.plot(*clean, color="tab:blue", marker=".", label=f"student clean ({clean[1][-1]:.3f})")
    ax.plot(*pgd, color="tab:red", marker=".", label=f"student PGD ({pgd[1][-1]:.3f})")
    for name, color, ls in (("robust_teacher_pgd_acc", "tab:red", "--"), ("clean_teacher_pgd_acc", "tab:orange", ":")):
        value = log.last_value(f"{stage}/{name}")
        if value is not None:
            ax.axhline(value, color=color, ls=ls, lw=1, label=f"{name.replace('_acc', '').replace('_', ' ')} ({value:.3f})")
    ax.set_ylim(0, 1.01)
    style_axes(ax, f"clean and PGD accuracy ({stage})", ylabel="accuracy")
    ax.legend(fontsize=LEGEND_SIZE - 1, loc="lower right", framealpha=0.85)
    return ax


@view("mtard_balance")
def mtard_balance(ax: Axes, log: EventLog) -> Axes:
    """kd.mtard: the loss weights w_adv, w_nat (left) and teacher temperatures τ_adv, τ_nat (right)."""
    w_adv = log.scalars("mtard/w_adv")
    if not w_adv[0]:
        return empty(ax, "MTARD balance")
    mark = "." if len(w_adv[0]) < 30 else None
    ax.plot(*decimate(*w_adv), color="tab:red", marker=mark, label="w_adv")
    ax.plot(*decimate(*log.scalars("mtard/w_nat")), color="tab:blue", marker=mark, label="w_nat")
    ax.set_ylim(0, 1)
    style_axes(ax, "MTARD weights and temperatures", ylabel="weight")
    ax2 = ax.twinx()
    ax2.plot(*decimate(*log.scalars("mtard/tau_adv")), color="tab:red", ls="--", marker=mark, label="τ_adv")
    ax2.plot(*decimate(*log.scalars("mtard/tau_nat")), color="tab:blue", ls="--", marker=mark, label="τ_nat")
    ax2.set_ylabel("temperature (dashed)", fontsize=LEGEND_SIZE + 1)
    ax2.tick_params(labelsize=LEGEND_SIZE)
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=LEGEND_SIZE, loc="center right", ncol=2)
    return ax


@view("generations")
def generations(ax: Axes, log: EventLog) -> Axes:
    """kd.self_gt: validation accuracy at the end of each self-distillation generation."""
    event = None
    for e in reversed(log.of("self_gt/generation_acc")):
        if e.get("kind") == "points":
            event = e
            break
    if event is None:
        return empty(ax, "self-distillation generations")
    ax.plot(event["x"], event["y"], marker="o", color="tab:purple")
    ax.set_xticks(event["x"])
    style_axes(ax, f"accuracy per generation (α = {event.get('alpha', '?')})", xlabel="generation", ylabel="val accuracy")
    return ax
