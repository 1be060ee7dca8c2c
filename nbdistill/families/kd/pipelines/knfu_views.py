"""The views of ``kd.knfu`` (pure ``f(ax, log) -> ax``; each draws from an empty or partial log):

- ``knfu_clients``: every client's accuracy on test data of its own label distribution, per round
  (thin lines), and their mean (thick), up to an accuracy of 1;
- ``knfu_weights``: the last round's fusion weights (row k: whose knowledge client k fuses);
- ``knfu_histograms``: the clients' label histograms (the Dirichlet label skew), stacked by class.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, TITLE_SIZE, empty, style_axes
from ....core.views import view
from ..views import _last_table

CLIENT_PREFIX = "knfu/client_acc/"


def _client_names(log: EventLog) -> list[str]:
    names = [n for n in log.names("scalar") if n.startswith(CLIENT_PREFIX)]
    return sorted(names, key=lambda n: int(n[len(CLIENT_PREFIX) :]) if n[len(CLIENT_PREFIX) :].isdigit() else 0)


@view("knfu_clients")
def knfu_clients(ax: Axes, log: EventLog) -> Axes:
    """Per-client accuracy on its own label distribution per round, and the mean (ALMA)."""
    title = "client accuracy on own label distribution"
    steps, mean = log.scalars("knfu/mean_acc")
    if not steps:
        return empty(ax, title)
    lowest = min(mean)
    for name in _client_names(log):
        s, v = log.scalars(name)
        ax.plot(s, v, lw=0.8, alpha=0.6, label=f"client {name[len(CLIENT_PREFIX) :]}")
        lowest = min([lowest, *v])
    ax.plot(steps, mean, color="black", lw=2.2, label=f"mean {mean[-1]:.3f}")
    ax.set_ylim(max(0.0, lowest - 0.05) if np.isfinite(lowest) else 0.0, 1.005)
    style_axes(ax, title, xlabel="round", ylabel="accuracy")
    ax.legend(fontsize=LEGEND_SIZE, ncol=2, loc="lower right")
    return ax


@view("knfu_weights")
def knfu_weights(ax: Axes, log: EventLog) -> Axes:
    """The last round's fusion weights: row k weighs the clients whose knowledge client k distils."""
    event = _last_table(log, "knfu/weights")
    if event is None:
        return empty(ax, "fusion weights")
    w = np.asarray(event["rows"], dtype=float)
    ax.imshow(w, cmap="Greens", vmin=0, vmax=1)
    if len(w) <= 10:
        for i in range(len(w)):
            for j in range(len(w)):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if w[i, j] > 0.6 else "black")
    ax.set_xlabel("source client j", fontsize=TITLE_SIZE - 1)
    ax.set_ylabel("client k", fontsize=TITLE_SIZE - 1)
    ax.set_title(f"fusion weights w_kj (round {event.get('step', '?')})", fontsize=TITLE_SIZE)
    return ax


@view("knfu_histograms")
def knfu_histograms(ax: Axes, log: EventLog) -> Axes:
    """Each client's training labels, stacked by class: the label skew the fusion has to cope with."""
    event = _last_table(log, "knfu/label_histogram")
    if event is None:
        return empty(ax, "client label histograms")
    counts = np.asarray(event["rows"], dtype=float)
    bottom = np.zeros(len(counts))
    colours = [matplotlib.colormaps["tab10"](c % 10) for c in range(counts.shape[1])]
    for c in range(counts.shape[1]):
        ax.bar(np.arange(len(counts)), counts[:, c], bottom=bottom, color=colours[c], label=str(event["columns"][c]))
        bottom += counts[:, c]
    ax.set_xticks(np.arange(len(counts)))
    ax.set_ylim(0, 1.05 * max(float(bottom.max()), 1.0))
    style_axes(ax, "client label histograms", xlabel="client", ylabel="examples")
    ax.legend(fontsize=LEGEND_SIZE - 1, title="class", title_fontsize=LEGEND_SIZE, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
