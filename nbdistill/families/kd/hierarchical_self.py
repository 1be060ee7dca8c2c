"""``kd.hierarchical_self``: early exits of the student distilled from its own last layer ("Be Your Own
Teacher", Zhang et al., ICCV 2019), with each exit's accuracy in the evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.evaluation import ClassificationGap
from ...core.gap import classification_gap
from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, HeadsFromFeatures, temperature_hparam
from .features import PENULTIMATE, capture, resolve_all
from .heads import ExitHead


class ExitAccuracies(ClassificationGap):
    """The classification gap plus each early exit's accuracy, ``exit<i>_acc`` (exits numbered from 1)."""

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        x, y = batch[0], batch[1]
        out, _, _, exit_logits = module.forward_exits(x)
        t = module.teacher_logits(x) if len(module.teachers) else out
        self.outputs.setdefault(stage, []).append(
            (t.detach().cpu(), out.detach().cpu(), y.cpu(), *(z.detach().cpu() for z in exit_logits))
        )

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.gathered(module, stage)
        if parts is None:
            return {}
        t, s, y = parts[:3]
        metrics = classification_gap(t, s, y, num_classes=s.shape[-1])
        for i, z in enumerate(parts[3:], start=1):
            metrics[f"exit{i}_acc"] = (z.argmax(-1) == y).float().mean().item()
        return metrics

    def scalars(self, module: Any, metrics: dict[str, Any]) -> dict[str, float]:
        exits = {k: float(v) for k, v in metrics.items() if k.startswith("exit")}
        return {**super().scalars(module, metrics), **exits}


@register("kd.hierarchical_self", views=GAP_VIEWS, needs_teacher=False)
class HierarchicalSelfKD(HeadsFromFeatures):
    """Self-distillation: early exits of the student learn from its own last layer ("Be Your Own Teacher", Zhang et al., ICCV 2019).

    Each layer named in ``exits`` gets an exit head (bottleneck to the size of the deepest feature,
    the input of the student's last Linear, then a classifier). No teacher is needed; one given
    only measures the gap. Each exit's accuracy is logged as ``val/exit<i>_acc`` (and ``test/…``).

    The loss is :func:`.losses.self_distillation`: the deepest classifier's CE has weight 1, as in the
    authors' code (the paper's sum over all classifiers would give it 1 − α; see there). Defaults
    T = 3, α = 0.3, λ = 0.03 are the authors' code's. The deepest outputs are detached where they act
    as teacher.
    """

    evaluation_class = ExitAccuracies
    exits = HParam(str, "net.1", help="comma-separated student layers that get an early exit")
    temperature = temperature_hparam(3.0)
    alpha = HParam(float, 0.3, 0.0, 1.0, help="weight of the KL to the deepest exit; 1 − alpha weighs the exits' CE")
    feature_weight = HParam(float, 0.03, 0.0, 10.0, help="weight λ of the L2 feature hint")

    def build_parts(self) -> None:
        super().build_parts()
        self.exit_names = resolve_all(
            self.student, self.exits, "student", "kd.hierarchical_self: name at least one student layer in 'exits'"
        )

    def build_heads(self, x: torch.Tensor) -> None:
        out, features = capture(self.student, x, [*self.exit_names, PENULTIMATE], "student")
        dim = features[-1].flatten(1).shape[1]
        self.exit_heads = nn.ModuleList(ExitHead(f.shape[1:], dim, out.shape[-1]) for f in features[:-1])

    def forward_exits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``(final logits, deepest feature, exit features, exit logits)`` of one forward pass."""
        out, features = capture(self.student, x, [*self.exit_names, PENULTIMATE], "student")
        heads = [head(f) for head, f in zip(self.exit_heads, features[:-1])]
        return out, features[-1], [h[0] for h in heads], [h[1] for h in heads]

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        out, feature, exit_features, exit_logits = self.forward_exits(x)
        return losses.self_distillation(
            out, feature, exit_logits, exit_features, y, self.temperature, self.alpha, self.feature_weight
        )
