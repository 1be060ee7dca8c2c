"""The view of ``score.disback``: the intermediate distributions of the recorded scores.

Events (written by :func:`write_path` once, at the end of DisBack's stage 1):

- ``points`` named ``disback/generator``: the initial generator's samples from fixed noise;
- ``points`` named ``disback/s<k>`` for ``k = 0 … N``: a ``PATH_STEPS``-step DDIM of the score ``s^k``
  (``s^0`` the teacher) from the same noise; fields ``x``, ``y`` (at most ``PATH_POINTS``), ``k``.

``disback_path`` overlays them, coloured by ``k``: the path that stage 2 walks back from the generator
(light) to the teacher (dark).
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, empty, style_axes
from ...core.views import view

#: Samples per distribution of the path, their DDIM steps and the seed of their prior noise.
PATH_POINTS, PATH_STEPS, PATH_SEED = 500, 16, 4321
TITLE = "DisBack: recorded scores s^k"


def write_path(writer: Any, module: Any, step: int, like: Any) -> None:
    """Write the ``disback/*`` points of ``module``'s recorded scores (see the module docstring), shaped and typed
    like the data batch ``like``; nothing without a writer or for data other than 2-D points."""
    if writer is None or like.dim() != 2 or like.shape[1] != 2:
        return
    samples = module.path_samples(PATH_POINTS, PATH_STEPS, PATH_SEED, tuple(like.shape[1:]), like.dtype)
    for k, x in enumerate(samples, start=-1):
        x = x.detach().cpu().double()
        name = "disback/generator" if k < 0 else f"disback/s{k}"
        writer.points(name, [round(v, 4) for v in x[:, 0].tolist()], [round(v, 4) for v in x[:, 1].tolist()], step=step, k=k)


@view("disback_path")
def disback_path(ax: Axes, log: EventLog) -> Axes:
    """The initial generator's samples (red crosses) and each recorded score's DDIM samples, coloured from ``s^N`` (light) to ``s^0`` (dark)."""
    names = [n for n in log.names("points") if n.startswith("disback/s")]
    if not names:
        return empty(ax, TITLE)
    events = sorted((log.last(n) for n in names), key=lambda e: e.get("k", 0))
    top = max(e.get("k", 0) for e in events) or 1
    colours = mpl.colormaps["viridis"]
    for e in reversed(events):
        k = e.get("k", 0)
        label = "s^0 (teacher)" if k == 0 else f"s^{k}"
        ax.scatter(e["x"], e["y"], s=3, color=colours(0.9 * k / top), alpha=0.6, label=label)
    generator = log.last("disback/generator")
    if generator is not None:  # on top: a fresh generator's samples are a small blob
        ax.scatter(
            generator["x"], generator["y"], s=6, marker="x", linewidths=0.6, color="tab:red", alpha=0.5, label="initial generator"
        )
    style_axes(ax, TITLE, xlabel="x₁", ylabel="x₂")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=LEGEND_SIZE, markerscale=3)
    return ax
