"""What every view draws alike: font sizes, the "waiting for data…" placeholder, axes styling and
the thinning of long series.

Shared by the package's views (:mod:`nbdistill.widgets.views`) and every family's ``views.py``,
through these public names. It sits in core, beside the view registry, because every family's
views use it and a family needs nothing but core: kept in ``widgets/`` it would make each family
depend on the panel's package. It imports numpy only (the Axes it styles are handed in), so it
adds no drawing library to core and a drawing worker loads it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Most points a line is drawn with: a redraw costs the same at step 100 and at step 100 000.
MAX_POINTS = 400
TITLE_SIZE = 10
LABEL_SIZE = 9
LEGEND_SIZE = 8


def decimate(steps, values, max_points: int = MAX_POINTS):
    """At most ``max_points`` points: bin means of long series (NaN-aware), first and last step kept."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if len(steps) <= max_points:
        return steps, values
    bins = np.array_split(np.arange(len(steps)), max_points)
    xs = np.array([steps[b].mean() for b in bins])
    xs[0], xs[-1] = steps[0], steps[-1]
    with np.errstate(all="ignore"):
        ys = np.array([nanmean(values[b]) for b in bins])
    return xs, ys


def nanmean(values) -> float:
    """Mean of the finite values (NaN when there is none)."""
    kept = finite(values)
    return float(kept.mean()) if len(kept) else float("nan")


def finite(values) -> np.ndarray:
    """The finite values of ``values`` as a float array."""
    v = np.asarray(values, float)
    return v[np.isfinite(v)]


def empty(ax: Axes, title: str, message: str = "waiting for data…") -> Axes:
    """``ax`` titled, without ticks, saying ``message`` in its middle: a view with nothing to draw yet."""
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def style_axes(ax: Axes, title: str, xlabel: str = "step", ylabel: str | None = None) -> None:
    """The title, labels, tick size and light grid every line view has."""
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=LABEL_SIZE - 1)
    ax.grid(alpha=0.3)
