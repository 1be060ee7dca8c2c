"""The view of ``score.decoupled_dmd``: the variance of the student's samples against the step.

Events drawn (written by :class:`.decoupled_dmd.DecoupledDMD` at each validation):

- ``scalar`` ``val/sample_variance``: the trace of the covariance of the samples (all classes), with a
  ``label`` field naming the run's switched-on terms (``"CA"``, ``"DM"``, ``"CA+DM"``);
- ``scalar`` ``val/class_variance``: the mean over classes of the within-class trace, same ``label``.

Drawing several runs' logs on one Axes overlays their curves, one colour per label: the paper's finding
(Liu et al. 2025) is that CA alone makes the variance climb while DM holds it.
"""

from __future__ import annotations

from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, empty, style_axes
from ...core.views import view

#: The colour of each run label; any other label is drawn in grey.
COLOURS = {"CA": "tab:red", "DM": "tab:blue", "CA+DM": "tab:purple"}
TITLE = "sample variance"


@view("dmd_variance")
def dmd_variance(ax: Axes, log: EventLog) -> Axes:
    """``val/sample_variance`` (solid) and ``val/class_variance`` (dashed) against the step, coloured by the run's terms."""
    steps, total = log.scalars("val/sample_variance")
    if not steps:
        return empty(ax, TITLE)
    label = log.of("val/sample_variance")[-1].get("label", "student")
    colour = COLOURS.get(label, "0.4")
    ax.plot(steps, total, "-o", color=colour, markersize=3, label=f"{label}: all samples")
    class_steps, within = log.scalars("val/class_variance")
    if class_steps:
        ax.plot(class_steps, within, "--", color=colour, label=f"{label}: within class")
    style_axes(ax, TITLE, ylabel="tr Cov")
    ax.legend(fontsize=LEGEND_SIZE)
    return ax
