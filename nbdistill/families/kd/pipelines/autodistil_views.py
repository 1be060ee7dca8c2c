"""The view of ``kd.autodistil``: its ranked sub-students, accuracy against size, Pareto front marked."""

from __future__ import annotations

from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, empty, style_axes
from ....core.views import view

TITLE = "sub-students of the super-network"


@view("autodistil_subnets")
def autodistil_subnets(ax: Axes, log: EventLog) -> Axes:
    """Validation accuracy against parameters of every ranked sub-student (the last
    ``autodistil_subnets`` table); the Pareto front joined and ringed, the best annotated, the
    teacher's validation accuracy dashed."""
    events = [e for e in log.of("autodistil_subnets") if e.get("kind") == "table" and e.get("rows")]
    if not events:
        return empty(ax, TITLE)
    columns = events[-1]["columns"]
    rows = [dict(zip(columns, r)) for r in events[-1]["rows"]]
    params = [float(r["params"]) for r in rows]
    acc = [float(r["val_acc"]) for r in rows]
    ax.scatter(params, acc, s=18, color="C0", alpha=0.6, label=f"sub-students ({len(rows)})")
    front = sorted((p, a) for p, a, r in zip(params, acc, rows) if r.get("pareto"))
    if front:
        ax.plot([p for p, _ in front], [a for _, a in front], color="C3", lw=1.2, drawstyle="steps-post")
        ax.scatter(*zip(*front), s=60, facecolors="none", edgecolors="C3", lw=1.4, label="Pareto front")
    best = min(rows, key=lambda r: r.get("rank", 0))
    ax.annotate(
        f"best {best['widths']}: {float(best['val_acc']):.3f}",
        (float(best["params"]), float(best["val_acc"])),
        textcoords="offset points",
        xytext=(-6, -12),
        ha="right",
        fontsize=LEGEND_SIZE,
    )
    teacher = log.last_value("val/teacher_acc")
    if teacher is not None:
        ax.axhline(teacher, color="0.3", ls="--", lw=1.0, label=f"teacher ({teacher:.3f})")
    style_axes(ax, TITLE, xlabel="parameters", ylabel="validation accuracy")
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    return ax
