"""Views of ``kd.swing`` (pure functions ``view(ax, log) -> ax``, registered with :func:`~nbdistill.core.views.view`).

- ``swing_exposure``: each canary's exposure in the canary-laden teacher and in the student, with
  the most a canary can have (log2 |R|) and what an unseen canary has on average (1/ln 2 bits);
- ``swing_temperatures``: the spread of the per-example temperatures τ_i over the training data,
  with the canaries' τ_i marked.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, empty, style_axes
from ....core.views import view

#: Mean exposure of a canary the model never saw (uniform rank among |R| → 1/ln 2 bits as |R| grows).
CHANCE_EXPOSURE = 1.0 / math.log(2.0)


@view("swing_exposure")
def swing_exposure(ax: Axes, log: EventLog) -> Axes:
    """Per-canary exposure (bits) of the teacher and the student, with the teacher's mean before the
    student is measured."""
    title = "canary exposure"
    event = log.last("swing/exposure")
    top = log.last_value("swing/max_exposure")
    if event is None:
        teacher = log.last_value("swing/teacher_exposure")
        if teacher is None:
            return empty(ax, title)
        ax.bar([0], [teacher], color="tab:red", label="teacher (mean)")
    else:
        rows = event.get("rows") or []
        if not rows:
            return empty(ax, title)
        columns = event["columns"]
        k = np.arange(len(rows))
        teacher = [r[columns.index("teacher")] for r in rows]
        student = [r[columns.index("student")] for r in rows]
        ax.bar(k - 0.2, teacher, 0.4, color="tab:red", label=f"teacher (mean {np.mean(teacher):.2f})")
        ax.bar(k + 0.2, student, 0.4, color="tab:blue", label=f"student (mean {np.mean(student):.2f})")
        ax.set_xticks(k)
        title = f"canary exposure (student τ on canaries ≈ {np.mean([r[columns.index('tau')] for r in rows]):.1f})"
    if top is not None:
        ax.axhline(top, color="0.3", ls="--", lw=1, label="log2 |R| (memorised)")
    ax.axhline(CHANCE_EXPOSURE, color="0.5", ls=":", lw=1, label="unseen canary (≈1.44)")
    style_axes(ax, title, xlabel="canary", ylabel="exposure (bits)")
    ax.set_ylim(0, 1.45 * max(top or 0.0, CHANCE_EXPOSURE, *(p.get_height() for p in ax.patches)))
    ax.legend(fontsize=LEGEND_SIZE, loc="upper center", ncol=2, framealpha=0.85)
    return ax


@view("swing_temperatures")
def swing_temperatures(ax: Axes, log: EventLog) -> Axes:
    """Histogram of τ_i over the training examples, the canaries' τ_i as marks on the axis."""
    title = "per-example temperature τ_i"
    event = log.last("swing/tau")
    if event is None or not event.get("counts"):
        return empty(ax, title, "waiting for data… (plain KD: one τ for all)")
    edges, counts = np.asarray(event["edges"], float), np.asarray(event["counts"], float)
    ax.bar(edges[:-1], counts, np.diff(edges), align="edge", color="tab:gray", label="training examples")
    canaries = event.get("canaries") or []
    if canaries:
        ax.plot(canaries, np.zeros(len(canaries)), "v", color="tab:red", ms=8, clip_on=False, label="canaries")
    ax.set_yscale("symlog", linthresh=1.0)
    style_axes(ax, title, xlabel="τ_i", ylabel="examples")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper center", framealpha=0.85)
    return ax
