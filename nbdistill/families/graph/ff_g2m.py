"""``graph.ff_g2m``: FF-G2M, a GNN's low- and high-frequency knowledge distilled into an MLP (Wu et al., AAAI 2023)."""

from __future__ import annotations

from ...core.registry import HParam, register
from . import losses
from .base import NODE_VIEWS, GNNToMLP


@register("graph.ff_g2m", views=NODE_VIEWS, needs_teacher=False)
class FFG2M(GNNToMLP):
    """FF-G2M: low-frequency (neighbour soft labels) and high-frequency (edge differences) distillation into an MLP (Wu et al., AAAI 2023)."""

    lam = HParam(float, 0.4, 0.0, 1.0, help="weight of the labelled-node CE; 1 − lam weighs LFD + HFD")
    tau = HParam(float, 1.5, 0.1, 10.0, help="temperature of the high-frequency (edge-difference) distributions")

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index):
        return losses.ff_g2m(student_logits, teacher_logits, labels, label_mask, edge_index, self.lam, self.tau)
