"""Views: pure functions that draw run events on matplotlib Axes, and how a run's views are laid out.

The same view draws in the live panel, in ``Run.plot()`` and in the tests. Every view takes an
``Axes`` and an :class:`~nbdistill.core.run.EventLog` (:func:`compare` takes several, to overlay
runs) and returns the Axes. Views draw from an empty or partial log without error ("waiting for
data…") and never call pyplot, so they are safe in background threads and worker processes.

The views every method shares are registered here with :func:`nbdistill.core.views.view`; the
registry (``VIEWS``, ``get_view``) lives in core, and so do the style helpers every view uses
(:mod:`nbdistill.core.style`). Importing this module registers :func:`draw_run` as the drawer
``Run.plot()`` uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ..core.run import EventLog
from ..core.style import LABEL_SIZE, LEGEND_SIZE, MAX_POINTS, TITLE_SIZE, decimate, empty, finite, style_axes
from ..core.views import VIEWS, check_views, register_drawer, view, views_for

__all__ = [
    "LABEL_SIZE",
    "LEGEND_SIZE",
    "MAX_POINTS",
    "TITLE_SIZE",
    "VIEWS",
    "VIEWS_PER_ROW",
    "compare",
    "decimate",
    "draw_compare",
    "draw_run",
    "gap",
    "losses",
    "per_class_gap",
    "views_for",
]

#: Views side by side in one row of a figure (the panel's and ``run.plot()``'s); more wrap to further rows.
VIEWS_PER_ROW = 3


@view("losses")
def losses(ax: Axes, log: EventLog) -> Axes:
    """Training loss terms (``train/*``) against the step; log scale once they span two decades."""
    names = sorted(n for n in log.names("scalar") if n.startswith("train/"))
    if not names:
        return empty(ax, "training loss")
    everything = []
    for name in names:
        steps, values = decimate(*log.scalars(name))
        everything.append(finite(values))
        ax.plot(steps, values, label=name.split("/", 1)[1], lw=1.6 if name == "train/loss" else 1.0)
    kept = np.concatenate(everything)
    if len(kept) and kept.min() > 0 and kept.max() / kept.min() > 100:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks would double the cost of a live redraw
    style_axes(ax, "training loss")
    ax.legend(fontsize=LEGEND_SIZE, loc="best", framealpha=0.85)
    return ax


@view("gap")
def gap(ax: Axes, log: EventLog, stage: str = "val") -> Axes:
    """Teacher and student accuracy, top-1 agreement (left axis) and KL(teacher‖student) (right axis)."""
    student = log.scalars(f"{stage}/student_acc")
    if not student[0]:
        return empty(ax, "teacher–student gap")
    teacher = log.scalars(f"{stage}/teacher_acc")
    agreement = log.scalars(f"{stage}/agreement")
    if teacher[0]:
        ax.plot(*teacher, color="tab:gray", ls="--", label="teacher")
    ax.plot(*student, color="tab:blue", marker=".", label="student")
    if agreement[0]:
        ax.plot(*agreement, color="tab:green", marker=".", label="agreement")
    shown = finite(student[1] + agreement[1])
    low = min(0.5, float(shown.min()) - 0.05) if len(shown) else 0.0
    ax.set_ylim(max(low, 0.0), 1.01)
    style_axes(ax, f"teacher–student gap ({stage})", ylabel="accuracy")
    kl = log.scalars(f"{stage}/kl")
    handles, labels = ax.get_legend_handles_labels()
    if kl[0]:
        ax2 = ax.twinx()
        (line,) = ax2.plot(*kl, color="tab:red", lw=1, label="KL")
        ax2.set_ylabel("KL(t‖s)", color="tab:red", fontsize=LABEL_SIZE)
        ax2.tick_params(axis="y", labelcolor="tab:red", labelsize=LABEL_SIZE - 1)
        finite_kl = finite(kl[1])
        if len(finite_kl):
            ax2.set_ylim(0, max(float(finite_kl.max()) * 1.1, 1e-3))
        handles.append(line)
        labels.append("KL")
    ax.legend(
        handles,
        labels,
        fontsize=LEGEND_SIZE,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=len(labels),
        frameon=False,
        handlelength=1.5,
        columnspacing=1.0,
    )
    return ax


@view("per_class_gap")
def per_class_gap(ax: Axes, log: EventLog) -> Axes:
    """Per-class teacher − student accuracy of the latest evaluation (test if present, else val)."""
    event = _last_points(log, "test/per_class_gap") or _last_points(log, "val/per_class_gap")
    if event is None:
        return empty(ax, "per-class gap")
    x = np.asarray(event["x"])
    y = np.asarray(event["y"], dtype=float)
    colors = ["0.7" if not math.isfinite(v) else "tab:red" if v > 0 else "tab:green" for v in y]
    ax.bar(x, np.nan_to_num(y), color=colors)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x)
    stage = event["name"].split("/")[0]
    mean = finite(y)
    xlabel = f"class (mean gap {mean.mean():+.3f})" if len(mean) else "class"
    style_axes(ax, f"per-class gap ({stage}, step {event.get('step', '?')})", xlabel=xlabel, ylabel="teacher − student acc")
    ax.grid(False)
    ax.grid(alpha=0.3, axis="y")
    return ax


def _last_points(log: EventLog, name: str) -> dict | None:
    for event in reversed(log.of(name)):
        if event.get("kind") == "points" and "x" in event and "y" in event:
            return event
    return None


def compare(ax: Axes, logs: Mapping[str, EventLog], name: str = "val/student_acc") -> Axes:
    """Scalar ``name`` of several runs overlaid, one line per label (e.g. KD against student-only).

    The legend gives each run's last value, so the comparison reads without hovering.
    """
    drawn = 0
    for label, log in logs.items():
        steps, values = decimate(*log.scalars(name))
        if not len(steps):
            continue
        last = values[-1]
        ax.plot(steps, values, lw=1.4, marker="." if len(steps) <= 60 else None, label=f"{label} ({last:.3g})")
        drawn += 1
    if not drawn:
        return empty(ax, name, "no data yet" if logs else "no runs to compare")
    style_axes(ax, name, ylabel=name.split("/")[-1])
    ax.legend(fontsize=LEGEND_SIZE, loc="best", framealpha=0.85)
    return ax


@register_drawer
def draw_run(
    log: EventLog,
    method: str,
    views: Iterable[str] | None = None,
    title: str | None = None,
    fig: Figure | None = None,
    tight: bool = True,
) -> Figure:
    """Draw ``views`` (default: the method's) on a Figure (made without pyplot), in rows of up to
    :data:`VIEWS_PER_ROW` side by side.

    ``fig`` is cleared and reused when given (the live panel keeps one Figure for a whole run).
    ``tight=False`` skips ``tight_layout`` (a third of a redraw's cost; the panel reuses margins).
    """
    names = check_views(views if views is not None else views_for(method))
    per_row = max(1, min(len(names), VIEWS_PER_ROW))
    rows = -(-len(names) // per_row) or 1
    if fig is None:
        fig = Figure(figsize=(4.2 * per_row, 3.4 * rows))
    else:
        fig.clear()
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.remove()
    for ax, name in zip(axes, names):
        VIEWS[name](ax, log)
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE)
    if tight:
        fig.tight_layout()
    return fig


def draw_compare(logs: Mapping[str, EventLog], names: Iterable[str] = ("val/student_acc",), title: str | None = None) -> Figure:
    """:func:`compare` for each scalar of ``names``, side by side on a Figure (made without pyplot)."""
    names = tuple(names)
    fig = Figure(figsize=(4.6 * len(names), 3.4))
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        compare(ax, logs, name)
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE)
    fig.tight_layout()
    return fig
