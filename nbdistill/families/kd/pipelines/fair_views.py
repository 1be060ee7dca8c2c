"""The view of ``kd.fair``: ``fair_parity``, the demographic-parity gap against the accuracy."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, empty, style_axes
from ....core.views import view


@view("fair_parity")
def fair_parity(ax: Axes, logs: EventLog | Mapping[str, EventLog], stage: str = "val") -> Axes:
    """Each run's student over training in the (parity gap, accuracy) plane, one point per validation
    epoch (the last one larger, its values in the legend), and its teacher as a star in the colour of
    the first run that has it (runs sharing a teacher draw it once). Fair and accurate is the top
    left. One ``EventLog`` draws one run; ``{label: EventLog}`` overlays runs."""
    if isinstance(logs, EventLog):
        logs = {"student": logs}
    title = f"parity gap vs accuracy over training ({stage})"
    drawn, teachers = 0, set()
    for i, (label, log) in enumerate(logs.items()):
        gap_steps, gaps = log.scalars(f"{stage}/student_parity_gap")
        acc_by_step = dict(zip(*log.scalars(f"{stage}/student_acc")))
        points = [(g, acc_by_step[step]) for step, g in zip(gap_steps, gaps) if step in acc_by_step]
        if not points:
            continue
        color = f"C{i % 10}"
        xs, ys = zip(*points)
        ax.plot(xs, ys, color=color, lw=1.0, marker="o", ms=3, alpha=0.7)
        ax.plot(xs[-1:], ys[-1:], color=color, marker="o", ms=8, ls="", label=f"{label} (gap {xs[-1]:.3f}, acc {ys[-1]:.3f})")
        t_gap, t_acc = log.last_value(f"{stage}/teacher_parity_gap"), log.last_value(f"{stage}/teacher_acc")
        if t_gap is not None and t_acc is not None and (t_gap, t_acc) not in teachers:  # a shared teacher once
            teachers.add((t_gap, t_acc))
            ax.plot(
                [t_gap],
                [t_acc],
                color=color,
                marker="*",
                ms=13,
                ls="",
                mec="k",
                label=f"teacher (gap {t_gap:.3f}, acc {t_acc:.3f})",
            )
        drawn += 1
    if not drawn:
        return empty(ax, title)
    style_axes(ax, title, xlabel="demographic-parity gap |P(ŷ=c|s=0) − P(ŷ=c|s=1)| (max over c)", ylabel="accuracy")
    ax.legend(fontsize=LEGEND_SIZE, loc="best")
    return ax
