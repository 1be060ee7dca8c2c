"""The view of ``kd.autodistiller``: ``autodistiller_search``, each candidate's score in the order of
evaluation and the best-so-far curve."""

from __future__ import annotations

from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, empty, style_axes
from ....core.views import view

TITLE = "pipeline search: score of each candidate"


def _table(log: EventLog) -> dict | None:
    for event in reversed(log.of("search/candidates")):
        if event.get("kind") == "table" and event.get("rows"):
            return event
    return None


@view("autodistiller_search")
def autodistiller_search(ax: Axes, log: EventLog) -> Axes:
    """Dots: the validation accuracy of each candidate pipeline as it was evaluated (filled: a
    refinement of a best-so-far pipeline, hollow: the random initial pool or a restart); line: the
    best so far, the best pipeline named. The x axis spans the budget once it is known."""
    steps, scores = log.scalars("search/score")
    if not steps:
        return empty(ax, TITLE)
    table = _table(log)
    origins: dict[int, str] = {}
    labels: dict[int, str] = {}
    if table is not None:
        cols = table["columns"]
        for row in table["rows"]:
            rec = dict(zip(cols, row))
            if isinstance(rec.get("#"), int):
                origins[rec["#"]] = str(rec.get("origin", ""))
                labels[rec["#"]] = _label(rec)
    refined = [(s, v) for s, v in zip(steps, scores) if origins.get(s, "").startswith("refine")]
    generated = [(s, v) for s, v in zip(steps, scores) if not origins.get(s, "").startswith("refine")]
    if generated:
        ax.scatter(*zip(*generated), s=28, facecolors="none", edgecolors="C0", label="generated (random)", zorder=3)
    if refined:
        ax.scatter(*zip(*refined), s=28, color="C0", label="refined (one choice changed)", zorder=3)
    b_steps, best = log.scalars("search/best_so_far")
    if b_steps:
        ax.step(b_steps, best, where="post", color="C3", lw=1.5, label=f"best so far ({best[-1]:.3f})", zorder=2)
        top = next((s for s, v in zip(steps, scores) if v == best[-1]), None)
        if top in labels:
            ax.annotate(
                labels[top],
                (top, best[-1]),
                xytext=(-4, 6),
                textcoords="offset points",
                ha="right",
                fontsize=LEGEND_SIZE,
                color="C3",
            )
    budget = log.last_value("search/budget")
    if budget:
        ax.set_xlim(0.5, max(float(budget), max(steps)) + 0.5)
    lo, hi = min(scores), max(scores)
    span = max(hi - lo, 0.01)
    ax.set_ylim(lo - 0.4 * span, hi + 0.15 * span)  # room for the legend below and the best's name above
    style_axes(ax, TITLE, xlabel="evaluation #", ylabel="validation accuracy")
    ax.legend(fontsize=LEGEND_SIZE, loc="best", framealpha=0.85)
    return ax


def _label(rec: dict) -> str:
    try:
        text = f"{rec['loss']} T={float(rec['temperature']):g}"
    except (KeyError, TypeError, ValueError):
        return ""
    return text + "".join(f" +{rec.get(k)}" for k in ("intermediate", "augment") if rec.get(k) not in (None, "none"))
