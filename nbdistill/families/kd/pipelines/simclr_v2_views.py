"""The view of ``kd.simclr_v2`` and ``kd.unfused``: their inner phases before distillation."""

from __future__ import annotations

from matplotlib.axes import Axes

from ....core.run import EventLog
from ....core.style import LEGEND_SIZE, empty, style_axes
from ....core.views import view

#: The inner-phase curves drawn, with their labels (whichever a run has).
PHASES = {
    "ssl/loss": "contrastive pretraining (NT-Xent)",
    "teacher/finetune_loss": "teacher fine-tuning (labelled CE)",
    "unfused/selfdistill_loss": "self-distillation on pseudo-labels",
}


@view("ssl_pretraining")
def ssl_pretraining(ax: Axes, log: EventLog) -> Axes:
    """The loss of each inner phase per epoch: SSL pretraining, then the teacher's fine-tuning
    (SimCLRv2) or the self-distillation on cluster pseudo-labels (UNFUSED)."""
    title = "phases before distillation"
    drawn = 0
    for name, label in PHASES.items():
        epochs, values = log.scalars(name)
        if epochs:
            ax.plot(epochs, values, marker=".", ms=3, lw=1.2, label=f"{label} ({values[-1]:.3f})")
            drawn += 1
    if not drawn:
        return empty(ax, title)
    notes = []
    for name, text in (("teacher/val_acc", "teacher val acc"), ("unfused/cluster_purity", "cluster purity")):
        value = log.last_value(name)
        if value is not None:
            notes.append(f"{text} {value:.3f}")
    labelled = log.last_value("labels/labelled")
    if labelled is not None:
        notes.append(f"{int(labelled)} labelled")
    style_axes(ax, title + (f" — {', '.join(notes)}" if notes else ""), xlabel="epoch", ylabel="loss")
    ax.legend(fontsize=LEGEND_SIZE)
    return ax
