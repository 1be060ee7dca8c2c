"""Views: pure functions that draw run events on matplotlib Axes.

The same view draws in the live panel, in ``Run.plot()`` and in the tests. Every view takes an
``Axes`` and an :class:`~nbdistill.core.run.EventLog` (or several, to overlay runs) and returns
the Axes. Views never call pyplot, so they are safe in background threads.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..core.run import EventLog

MAX_POINTS = 400


def decimate(steps, values, max_points: int = MAX_POINTS):
    """At most ``max_points`` points: bin means of long series, so a redraw costs the same at any length."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if len(steps) <= max_points:
        return steps, values
    bins = np.array_split(np.arange(len(steps)), max_points)
    return np.array([steps[b].mean() for b in bins]), np.array([values[b].mean() for b in bins])


def _empty(ax: Axes, title: str, message: str = "waiting for data…") -> Axes:
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.5")
    return ax


def losses(ax: Axes, log: EventLog) -> Axes:
    """Training loss terms (``train/*``) against the step."""
    names = sorted(n for n in log.names("scalar") if n.startswith("train/"))
    if not names:
        return _empty(ax, "training loss")
    for name in names:
        steps, values = decimate(*log.scalars(name))
        ax.plot(steps, values, label=name.split("/", 1)[1], lw=1.4 if name == "train/loss" else 1.0)
    ax.set_title("training loss", fontsize=10)
    ax.set_xlabel("step")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return ax


def gap(ax: Axes, log: EventLog, stage: str = "val") -> Axes:
    """Teacher and student accuracy, top-1 agreement (left axis) and KL(teacher‖student) (right axis)."""
    student = log.scalars(f"{stage}/student_acc")
    if not student[0]:
        return _empty(ax, "teacher–student gap")
    teacher = log.scalars(f"{stage}/teacher_acc")
    agreement = log.scalars(f"{stage}/agreement")
    if teacher[0]:
        ax.plot(*teacher, color="tab:gray", ls="--", label="teacher acc")
    ax.plot(*student, color="tab:blue", marker=".", label="student acc")
    if agreement[0]:
        ax.plot(*agreement, color="tab:green", marker=".", label="agreement")
    ax.set_ylim(min(0.5, min(student[1]) - 0.05), 1.01)
    ax.set_xlabel("step")
    ax.set_title(f"teacher–student gap ({stage})", fontsize=10)
    ax.grid(alpha=0.3)
    kl = log.scalars(f"{stage}/kl")
    handles, labels = ax.get_legend_handles_labels()
    if kl[0]:
        ax2 = ax.twinx()
        (line,) = ax2.plot(*kl, color="tab:red", lw=1, label="KL(t‖s)")
        ax2.set_ylabel("KL", color="tab:red", fontsize=8)
        ax2.tick_params(axis="y", labelcolor="tab:red", labelsize=8)
        handles.append(line)
        labels.append("KL(t‖s)")
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    return ax


def per_class_gap(ax: Axes, log: EventLog) -> Axes:
    """Per-class teacher − student accuracy of the latest evaluation (test if present, else val)."""
    event = log.last("test/per_class_gap") or log.last("val/per_class_gap")
    if event is None:
        return _empty(ax, "per-class gap")
    x = np.asarray(event["x"])
    y = np.asarray(event["y"], dtype=float)
    colors = ["tab:red" if v > 0 else "tab:green" for v in y]
    ax.bar(x, y, color=colors)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x)
    ax.set_xlabel("class")
    ax.set_ylabel("teacher − student acc")
    ax.set_title(f"per-class gap ({event['name'].split('/')[0]})", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return ax


VIEWS: dict[str, Callable[[Axes, EventLog], Axes]] = {
    "losses": losses,
    "gap": gap,
    "per_class_gap": per_class_gap,
}


def views_for(method: str) -> tuple[str, ...]:
    from ..core.registry import get_method

    try:
        return get_method(method).views or ("losses",)
    except Exception:
        return ("losses",)


def draw_run(log: EventLog, method: str, views: Iterable[str] | None = None, title: str | None = None, fig: Figure | None = None) -> Figure:
    """Draw ``views`` (default: the method's) side by side on a Figure (made without pyplot)."""
    names = tuple(views) if views is not None else views_for(method)
    unknown = [v for v in names if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown view(s) {unknown}; known: {sorted(VIEWS)}")
    if fig is None:
        fig = Figure(figsize=(4.2 * len(names), 3.4))
    else:
        fig.clear()
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        VIEWS[name](ax, log)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
