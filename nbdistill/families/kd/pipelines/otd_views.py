"""Views of ``kd.otd`` (see :mod:`nbdistill.core.views`):

- ``otd_subspace``: how much of the source trajectory's energy (its steps) the top-k directions hold,
  the kept rank marked;
- ``otd_outside``: the share of each target step outside the source subspace, over training.
"""

from __future__ import annotations

from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, decimate, empty, style_axes
from ....core.views import view


@view("otd_subspace")
def otd_subspace(ax: Axes, log: EventLog) -> Axes:
    """Cumulative energy Σ_{i≤k} σ_i² / Σ σ_i² of the source trajectory against k, the kept rank marked."""
    table = next((e for e in reversed(log.of("otd/spectrum")) if e.get("kind") == "table" and e.get("rows")), None)
    if table is None:
        return empty(ax, "source trajectory subspace")
    cols = table["columns"]
    rows = table["rows"]
    k = [r[cols.index("direction")] for r in rows]
    energy = [r[cols.index("energy")] for r in rows]
    kept = sum(bool(r[cols.index("kept")]) for r in rows)
    ax.plot(k, energy, color="tab:blue", marker="." if len(k) < 60 else None)
    ax.axvline(kept, color="tab:red", ls="--", label=f"rank kept: {kept} ({energy[kept - 1]:.0%} of the energy)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    style_axes(ax, "source trajectory: energy in the top-k directions", xlabel="k (directions)", ylabel="cumulative energy")
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    return ax


@view("otd_outside")
def otd_outside(ax: Axes, log: EventLog) -> Axes:
    """‖g − V Vᵀ g‖ / ‖g‖ of each target step of the body (before steering)."""
    steps, values = log.scalars("otd/outside_share")
    if not steps:
        return empty(ax, "target step outside the subspace")
    ax.plot(*decimate(steps, values), color="tab:purple")
    ax.set_ylim(0, 1.02)
    style_axes(ax, "target step outside the source subspace", ylabel="share of the norm")
    return ax
