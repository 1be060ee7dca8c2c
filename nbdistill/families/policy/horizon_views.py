"""``policy_horizon``: does an in-context learner keep learning past the horizon it was trained on?

The student's held-out cumulative regret ``R_t`` (mean ± s.e.) with its training context ``T_train``
marked (the ``context`` field of its regret event), beside Thompson sampling (or LinUCB on linear
tasks). The legend gives the student's average per-step regret before and after ``T_train``:

    ``slope_before = R_{T_train} / T_train``,   ``slope_after = (R_H - R_{T_train}) / (H - T_train)``.

A learner that generalises keeps a falling slope after ``T_train``; one that does not pays a constant
(or growing) regret per step there.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, empty, style_axes
from ...core.views import view
from .views import COLOURS, _curves


def slopes(y: np.ndarray, context: int) -> tuple[float, float]:
    """Average per-step regret before and after step ``context`` of a cumulative-regret curve ``y`` (``y[t-1] = R_t``)."""
    before = y[context - 1] / context
    after = (y[-1] - y[context - 1]) / (len(y) - context) if len(y) > context else float("nan")
    return float(before), float(after)


@view("policy_horizon")
def policy_horizon(ax: Axes, log: EventLog) -> Axes:
    """The student's regret with its training horizon marked, and its per-step regret before and after it."""
    title = "regret beyond the trained horizon"
    curves, _ = _curves(log, "regret")
    student = curves.get("student")
    if student is None:
        return empty(ax, title)
    for who in ("linucb", "thompson"):
        if who in curves:
            e = curves[who]
            ax.plot(e["x"], e["y"], color=COLOURS[who], lw=1.2, ls="--", label=who)
            break
    x, y = np.asarray(student["x"], float), np.asarray(student["y"], float)
    context = int(student.get("context") or len(y))
    before, after = slopes(y, min(context, len(y)))
    label = f"student: {before:.3f}/step to t={context}" + (f", {after:.3f}/step after" if len(y) > context else "")
    ax.plot(x, y, color="black", lw=2.2, label=label)
    se = student.get("se")
    if se is not None and len(se) == len(y):
        ax.fill_between(x, y - np.asarray(se, float), y + np.asarray(se, float), color="black", alpha=0.2, lw=0)
    if len(y) > context:
        ax.axvline(context + 0.5, color="tab:red", lw=1, ls=":", label=f"trained context ({context})")
    style_axes(ax, title, xlabel="t (pulls)", ylabel="regret R_t")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper left")
    return ax
