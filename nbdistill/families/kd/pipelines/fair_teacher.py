"""The fair teacher of ``kd.fair``: a classifier whose latent is made independent of the sensitive
attribute by a distance-covariance penalty, trained when no teacher is given; and the data
``kd.fair`` reads (the training split's inputs, labels and groups)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ....core.batches import as_pair
from ....core.errors import ConfigError
from ..features import PENULTIMATE, capture
from .fair_metrics import distance_covariance

#: The hidden widths of the teacher ``kd.fair`` trains: its latent is the last (16 features).
TEACHER_HIDDEN = (32, 16)
#: Batch size of the teacher's training (the distance covariance costs O(batch²)).
TEACHER_BATCH = 256

NO_GROUPS = (
    "kd.fair needs the sensitive attribute s of every example: batches of (inputs, labels, s) with s a 0/1 "
    "tensor, one value per example, got {what}; use nbdistill.data.FairTabular, or make your data module's "
    "train, val and test loaders yield (x, y, s)"
)


def split_tensors(data: Any, split: str) -> tuple[torch.Tensor, ...] | None:
    """``(x, y, s, ...)`` of a whole split: an in-memory data module's tensors, or the split's batches
    concatenated; None when the data has no such split."""
    dataset = getattr(data, "dataset", None)
    if callable(dataset) and hasattr(data, "_splits"):
        try:
            return tuple(dataset(split).tensors)
        except ConfigError:
            return None
    loader = getattr(data, f"{split}_dataloader", None)
    if loader is None:
        return None
    batches = [as_pair(b) if isinstance(b, dict) else b for b in loader()]
    if not batches or not all(isinstance(b, (list, tuple)) for b in batches):
        return None
    return tuple(torch.cat([b[i] for b in batches]) for i in range(min(len(b) for b in batches)))


def check_groups(data: Any) -> None:
    """A :class:`ConfigError`, before training, unless every split carries ``s`` with values in {0, 1}
    and the training split holds both groups."""
    for split in ("train", "val", "test"):
        tensors = split_tensors(data, split)
        if tensors is None:
            continue
        if len(tensors) < 3:
            raise ConfigError(NO_GROUPS.format(what=f"{split} batches of {len(tensors)} tensors"))
        s = tensors[2]
        values = sorted(torch.unique(s).tolist())
        if s.dim() != 1 or not set(values) <= {0, 1}:
            raise ConfigError(
                f"kd.fair reads the third element of a batch as the sensitive attribute s, a 0/1 value per example; the "
                f"{split} split's is of shape {tuple(s.shape)} with values {values[:5]}: encode the groups as 0 and 1"
            )
        if split == "train" and values != [0, 1]:
            raise ConfigError(
                f"the training split holds only the group s = {values}: a parity gap and the fairness loss compare two "
                "groups; give training examples of both groups (s = 0 and s = 1)"
            )


def train_fair_teacher(
    x: torch.Tensor,
    y: torch.Tensor,
    s: torch.Tensor,
    num_classes: int,
    fairness: float,
    epochs: int,
    seed: int,
    report: Callable[[int, float, float], None] | None = None,
) -> nn.Module:
    r"""A teacher with a fair latent (the first stage of Sikder et al., 2024, with a classifier for
    their VAE): an MLP ``in → 32 → 16 → classes`` trained by Adam (lr 1e-2, batches of 256 in a
    seeded order) on

    .. math:: \mathrm{CE}(f(x), y) + \lambda_t\,\mathrm{dCov}^2_n(h(x), s),

    :math:`h(x)` its 16-feature latent (the input of its last layer). ``report(epoch, loss,
    dcov)`` is called after each epoch with the epoch's mean loss and distance covariance.
    """
    from ....models.mlp import MLP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = MLP(x[0].numel(), list(TEACHER_HIDDEN), num_classes).to(x.device)
    optimiser = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(seed)
    teacher.train()
    for epoch in range(1, epochs + 1):
        total, dcov, batches = 0.0, 0.0, 0
        for idx in torch.randperm(len(x), generator=order).split(TEACHER_BATCH):
            idx = idx.to(x.device)
            out, (latent,) = capture(teacher, x[idx], [PENULTIMATE], "teacher")
            penalty = distance_covariance(latent, s[idx])
            loss = F.cross_entropy(out, y[idx]) + fairness * penalty
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, dcov, batches = total + loss.item(), dcov + penalty.item(), batches + 1
        if report is not None:
            report(epoch, total / batches, dcov / batches)
    return teacher.eval()
