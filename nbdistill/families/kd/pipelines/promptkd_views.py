"""``kd.promptkd``'s views.

- ``promptkd_prompts``: validation accuracy of the student with its learned prompts and with zero
  prompts in their place, over training, with the teacher's dashed.
- ``promptkd_class_cosine``: mean cosine of the student's features to each of the teacher's class
  vectors (columns) by true class (rows), from the ``test`` or latest ``val`` ``class_cosine`` table.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, TITLE_SIZE, decimate, empty, style_axes
from ....core.views import view
from ..views import _last_table


@view("promptkd_prompts")
def promptkd_prompts(ax: Axes, log: EventLog) -> Axes:
    """Student accuracy with learned prompts (solid) and zero prompts (dotted); teacher dashed."""
    title = "what the prompts learned (val accuracy)"
    steps, acc = log.scalars("val/student_acc")
    z_steps, zero = log.scalars("val/student_acc_zero_prompts")
    if not steps and not z_steps:
        return empty(ax, title)
    if steps:
        ax.plot(*decimate(steps, acc), color="C0", lw=1.4, label=f"learned prompts ({acc[-1]:.3f})")
    if z_steps:
        ax.plot(*decimate(z_steps, zero), color="C1", lw=1.2, ls=":", label=f"zero prompts ({zero[-1]:.3f})")
    teacher = log.last_value("val/teacher_acc")
    if teacher is not None:
        ax.axhline(teacher, color="0.3", ls="--", lw=1.0, label=f"teacher ({teacher:.3f})")
    style_axes(ax, title, ylabel="accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    return ax


@view("promptkd_class_cosine")
def promptkd_class_cosine(ax: Axes, log: EventLog) -> Axes:
    """Mean cos(student feature, class vector): rows the true class, columns the class vector."""
    title = "student feature · teacher class vector (cos)"
    event = _last_table(log, "test/class_cosine", "val/class_cosine")
    if event is None:
        return empty(ax, title)
    rows = np.array([[np.nan if v is None else v for v in row] for row in event["rows"]], dtype=float)
    image = ax.imshow(rows, cmap="RdBu_r", vmin=-1, vmax=1)
    n = len(rows)
    ax.set_xticks(range(rows.shape[1]))
    ax.set_yticks(range(n))
    ax.set_xlabel("class vector", fontsize=LEGEND_SIZE + 1)
    ax.set_ylabel("true class", fontsize=LEGEND_SIZE + 1)
    ax.tick_params(labelsize=LEGEND_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax
