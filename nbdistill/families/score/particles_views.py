"""Views of the particle methods (``score.sds``, ``score.vsd``, ``score.bsd``) and the writer of their events.

- ``score_particles``: snapshots of the particles with the data (red), coloured by the step they were taken
  at (early light, late dark; at most :data:`MAX_SNAPSHOTS` of them, evenly spread over the run), the
  latest drawn on top, with the particles' spread in the legend;
- ``bsd_alpha``: BSD's balance ``α`` (its batch mean) against the step, with the shares of particles
  whose ``α`` was clipped to 0 (pure denoising guidance) and to 1 (pure classifier guidance).

Events:

- ``points`` named ``particles/positions``: ``x``, ``y`` of at most :data:`MAX_PARTICLES` particles
  (the same evenly spaced indices every time, so one particle can be followed), ``n`` the particle
  count, ``spread`` the mean over the axes of the particles' standard deviation. Written by
  :func:`write_particles` every ``snapshot_every`` training steps (and at the start).
- ``points`` named ``samples/data``: the data (written by the family's evaluation).
- ``scalar`` ``train/alpha``, ``train/alpha_at_0``, ``train/alpha_at_1``: BSD's loss terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LABEL_SIZE, LEGEND_SIZE, TITLE_SIZE, decimate, empty, finite, style_axes
from ...core.views import view

#: Most particles a snapshot keeps (an event stays near 10 kB).
MAX_PARTICLES = 256
#: Most snapshots ``score_particles`` draws.
MAX_SNAPSHOTS = 8


def write_particles(writer: Any, points: Any, step: int) -> dict:
    """Emit ``particles/positions`` for the 2-D particles ``points`` ``[n, 2]`` (see the module docstring)."""
    xy = points.detach().cpu().double().numpy() if hasattr(points, "detach") else np.asarray(points, float)
    n = len(xy)
    kept = xy[np.linspace(0, n - 1, min(n, MAX_PARTICLES)).round().astype(int)] if n else xy
    spread = float(xy.std(0).mean()) if n > 1 else 0.0
    return writer.points(
        "particles/positions", np.round(kept[:, 0], 4).tolist(), np.round(kept[:, 1], 4).tolist(), step=step, n=n, spread=spread
    )


def _xy(event: dict) -> np.ndarray:
    try:
        xy = np.stack([np.asarray(event["x"], dtype=float), np.asarray(event["y"], dtype=float)], 1)
    except (KeyError, TypeError, ValueError):
        return np.zeros((0, 2))
    return xy[np.isfinite(xy).all(1)] if xy.ndim == 2 else np.zeros((0, 2))


@view("score_particles")
def score_particles(ax: Axes, log: EventLog) -> Axes:
    """The particles at several moments of training over the data, coloured by step (see the module docstring)."""
    import matplotlib

    title = "particles"
    snapshots = [e for e in log.of("particles/positions") if e.get("kind") == "points"]
    snapshots = [(e, _xy(e)) for e in snapshots]
    snapshots = [(e, xy) for e, xy in snapshots if len(xy)]
    if not snapshots:
        return empty(ax, title)
    if len(snapshots) > MAX_SNAPSHOTS:
        snapshots = [snapshots[i] for i in np.linspace(0, len(snapshots) - 1, MAX_SNAPSHOTS).round().astype(int)]
    last = len(snapshots) - 1
    data = next((e for e in reversed(log.of("samples/data")) if e.get("kind") == "points"), None)
    if data is not None and len(_xy(data)):
        xy = _xy(data)  # over the earlier snapshots, under the latest
        ax.scatter(xy[:, 0], xy[:, 1], s=5, color="tab:red", alpha=0.5, linewidths=0, label="data", zorder=last + 0.5)
    cmap = matplotlib.colormaps["viridis_r"]
    for k, (event, xy) in enumerate(snapshots):
        shade = 0.15 + 0.85 * (k / last if last else 1.0)
        latest = k == last
        spread = event.get("spread")
        label = f"step {event.get('step', '?')}" + (f" (spread {spread:.3g})" if isinstance(spread, (int, float)) else "")
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=9 if latest else 4,
            color=cmap(shade),
            alpha=0.9 if latest else 0.45,
            linewidths=0,
            label=label if (k in (0, last)) else None,
            zorder=1 + k,
        )
    ax.set_aspect("equal", adjustable="datalim")
    ax.tick_params(labelsize=LABEL_SIZE - 1)
    ax.set_title(f"{title} (light: early, dark: step {snapshots[-1][0].get('step', '?')})", fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE - 1, loc="upper right", framealpha=0.8, markerscale=2)
    return ax


@view("bsd_alpha")
def bsd_alpha(ax: Axes, log: EventLog) -> Axes:
    """BSD's mean ``α`` against the step, and the shares of ``α`` clipped to 0 and to 1."""
    title = "BSD balance α"
    curves = (("train/alpha", "mean α", "tab:purple", "-"), ("train/alpha_at_0", "share α = 0", "tab:blue", ":"))
    curves += (("train/alpha_at_1", "share α = 1", "tab:red", "--"),)
    drawn = False
    for name, label, color, style in curves:
        steps, values = log.scalars(name)
        if not steps:
            continue
        xs, ys = decimate(steps, values)
        last = finite(values)
        ax.plot(xs, ys, color=color, ls=style, lw=1.3, label=f"{label} ({last[-1]:.2f})" if len(last) else label)
        drawn = True
    if not drawn:
        return empty(ax, title)
    ax.set_ylim(-0.03, 1.03)
    style_axes(ax, title, ylabel="α (1: classifier guidance, 0: denoising)")
    ax.legend(fontsize=LEGEND_SIZE - 1, loc="best", framealpha=0.85)
    return ax
