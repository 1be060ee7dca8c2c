"""``graph.glnn``: GLNN, a GNN's soft labels distilled into an MLP on node features (Zhang et al., ICLR 2022)."""

from __future__ import annotations

from ...core.registry import HParam, register
from . import losses
from .base import NODE_VIEWS, GNNToMLP


@register("graph.glnn", views=NODE_VIEWS, needs_teacher=False)
class GLNN(GNNToMLP):
    """GLNN: an MLP matches the GNN's soft labels on every node, λ·CE + (1 − λ)·KL (Zhang et al., ICLR 2022).

    λ = 1 is the MLP trained alone on the labelled nodes (the baseline of the comparison).
    """

    lam = HParam(float, 0.5, 0.0, 1.0, help="weight of the labelled-node CE; 1 − lam weighs the KL to the teacher")

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index):
        return losses.glnn(student_logits, teacher_logits, labels, label_mask, self.lam)
