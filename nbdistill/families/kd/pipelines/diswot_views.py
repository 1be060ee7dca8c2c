"""The view of ``kd.diswot``: the student search, each candidate's DisWOT score against its size."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import empty, style_axes
from ....core.views import view

TITLE = "DisWOT search: score vs size"


@view("diswot_search")
def diswot_search(ax: Axes, log: EventLog) -> Axes:
    """Every architecture the search evaluated: DisWOT score (relation + semantic similarity to the
    teacher, before training) against parameters, coloured by when it was evaluated; the chosen
    student is starred and labelled, the parameter budget dashed."""
    event = log.last("diswot/search")
    if event is None or event.get("kind") != "table" or not event.get("rows"):
        return empty(ax, TITLE)
    col = {name: i for i, name in enumerate(event["columns"])}
    rows = event["rows"]
    params = np.array([r[col["params"]] for r in rows], dtype=float)
    score = np.array([r[col["score"]] for r in rows], dtype=float)
    order = np.array([r[col["candidate"]] for r in rows], dtype=float)
    points = ax.scatter(params, score, c=order, cmap="viridis", s=22, alpha=0.85, label="candidate")
    ax.figure.colorbar(points, ax=ax, label="evaluated (order)", pad=0.01)
    for r in rows:
        if r[col["chosen"]]:
            x, y = r[col["params"]], r[col["score"]]
            ax.scatter([x], [y], marker="*", s=220, color="crimson", edgecolor="black", zorder=3, label="chosen")
            ax.annotate(f"hidden {r[col['hidden']]}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    budget = log.last_value("diswot/budget")
    if budget is not None:
        ax.axvline(budget, color="grey", ls="--", lw=1, label="budget")
    ax.legend(loc="lower right", fontsize=8)
    style_axes(ax, TITLE, xlabel="parameters", ylabel="DisWOT score (higher: closer)")
    return ax
