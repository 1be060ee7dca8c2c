"""Views of ``policy.archive`` (DCG-MAP-Elites' archive distillation), drawn from the events of
:class:`.archive_evaluation.ArchiveEvaluation` (the latest validation's, else the test's):

- ``archive_elites``: the archive's heat map, the fitness of the elite in each cell (blank: empty);
- ``archive_policy``: the distilled policy's heat map, the best fitness ``π(· | d)`` shows in each cell
  it reaches when asked for every cell, with where each episode ends (dots);
- ``archive_coverage``: coverage against the step: the archive's at every iteration (thin) and at
  each validation, the distilled policy's, and a random actor's (dotted).

The two heat maps share one colour scale: the range of the fitnesses either shows (within ``[0, 1]``,
the reaching task's range).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, decimate, empty, finite, style_axes
from ...core.views import view

#: The colour map of the fitness heat maps and the widest range they use.
CMAP, VMIN, VMAX = "viridis", 0.0, 1.0


def latest(log: EventLog, name: str) -> dict | None:
    """The last ``val/<name>`` event, else the last ``test/<name>``."""
    return log.last(f"val/{name}") or log.last(f"test/{name}")


def shared_range(log: EventLog) -> tuple[float, float]:
    """The colour range of both heat maps: the fitnesses they show, within ``[VMIN, VMAX]``."""
    values = [
        finite(np.asarray(e["counts"], dtype=float).ravel()) for e in (latest(log, "archive_map"), latest(log, "policy_map")) if e
    ]
    shown = np.concatenate(values) if values else np.zeros(0)
    if not len(shown) or shown.min() >= shown.max():
        return VMIN, VMAX
    return max(VMIN, float(shown.min())), min(VMAX, float(shown.max()))


def heat_map(ax: Axes, event: dict, title: str, log: EventLog) -> Axes:
    values = np.asarray(event["counts"], dtype=float)
    edges = np.asarray(event["edges"], dtype=float)
    y_edges = np.asarray(event.get("y_edges", event["edges"]), dtype=float)
    vmin, vmax = shared_range(log)
    mesh = ax.pcolormesh(edges, y_edges, np.ma.masked_invalid(values), cmap=CMAP, vmin=vmin, vmax=vmax)
    ax.figure.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04, label="fitness (1 - energy)")
    filled = np.isfinite(values)
    ax.set_title(f"{title}: {int(filled.sum())}/{values.size} cells", fontsize=10)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_aspect("equal")
    ax.set_xlabel("final x", fontsize=9)
    ax.set_ylabel("final y", fontsize=9)
    ax.tick_params(labelsize=8)
    return ax


@view("archive_elites")
def archive_elites(ax: Axes, log: EventLog) -> Axes:
    """The archive's fitness per cell."""
    event = latest(log, "archive_map")
    if event is None:
        return empty(ax, "archive (MAP-Elites)")
    return heat_map(ax, event, "archive", log)


@view("archive_policy")
def archive_policy(ax: Axes, log: EventLog) -> Axes:
    """The distilled policy's fitness per cell it reaches, and where its episodes end."""
    event = latest(log, "policy_map")
    if event is None:
        return empty(ax, "distilled policy π(·|d)")
    heat_map(ax, event, "distilled π(·|d)", log)
    points = latest(log, "policy_reached")
    if points is not None and points.get("x"):
        ax.scatter(points["x"], points["y"], s=6, c="white", edgecolors="black", linewidths=0.3, zorder=3)
    return ax


@view("archive_coverage")
def archive_coverage(ax: Axes, log: EventLog) -> Axes:
    """Coverage of the archive and of the distilled policy against the step."""
    title = "coverage"
    curves = (
        ("archive/coverage", "archive (each iteration)", "tab:blue", "-", 0.8),
        ("val/archive_coverage", "archive", "tab:blue", "-", 1.6),
        ("val/policy_coverage", "distilled π(·|d)", "tab:orange", "-", 1.6),
        ("val/random_coverage", "random actor", "0.4", ":", 1.2),
    )
    drawn = False
    for name, label, color, style, width in curves:
        steps, values = log.scalars(name)
        if not steps:
            continue
        xs, ys = decimate(steps, values)
        last = finite(values)
        ax.plot(xs, ys, color=color, ls=style, lw=width, label=f"{label} ({last[-1]:.2f})" if len(last) else label)
        drawn = True
    if not drawn:
        return empty(ax, title)
    ax.set_ylim(0.0, 1.05)
    style_axes(ax, title, ylabel="share of cells")
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    return ax
