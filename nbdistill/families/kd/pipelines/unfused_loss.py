r"""UNFUSED's self-distillation on cluster pseudo-labels (Seth, Ghosh, Tyagi & Manocha, "UNFUSED:
UNsupervised Finetuning Using SElf supervised Distillation", ICASSP 2023 workshops, arXiv 2303.05668;
the loss as in the authors' ``src/upstream/unfused/upstream_expert.py``, github.com/Sreyan88/LAPE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence

#: The weights of the official config (``src/upstream/unfused/config.yaml``): α, β, γ.
ALPHA, BETA, GAMMA = 0.7, 0.3, 0.003


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Mean :math:`2 - 2\cos(a, b)` over the batch (the official ``loss_fn_mse``)."""
    return (2 - 2 * (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)).mean()


def unfused_self_distillation(
    deep_logits: torch.Tensor,
    shallow_logits: Sequence[torch.Tensor],
    pseudo_labels: torch.Tensor,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> dict[str, torch.Tensor]:
    r"""The deepest classifier learns the cluster pseudo-labels and teaches a head on each shallower layer:

    .. math:: L = \mathrm{CE}(z_d, \hat y) + \sum_i \big[\alpha\,\mathrm{CE}(z_i, \hat y)
              + \beta\,\mathrm{KL}(\mathrm{softmax}(z_d)\,\|\,\mathrm{softmax}(z_i))
              + \gamma\,(2 - 2\cos(z_i, z_d))\big]

    (the deep logits are not detached, as in the official code: the KL and cosine terms pull both ways)."""
    terms = {"ce_deep": F.cross_entropy(deep_logits, pseudo_labels)}
    loss = terms["ce_deep"]
    if shallow_logits:
        ce = sum(F.cross_entropy(z, pseudo_labels) for z in shallow_logits)
        kl = sum(kl_divergence(deep_logits, z).mean() for z in shallow_logits)
        cos = sum(cosine_distance(z, deep_logits) for z in shallow_logits)
        terms.update(ce_shallow=ce, kl=kl, cosine=cos)
        loss = loss + alpha * ce + beta * kl + gamma * cos
    terms["loss"] = loss
    return terms
