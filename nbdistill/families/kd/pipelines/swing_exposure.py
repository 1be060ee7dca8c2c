r"""Canaries and their exposure (Carlini, Liu, Erlingsson, Kos & Song, "The Secret Sharer: Evaluating
and Testing Unintended Memorization in Neural Networks", USENIX Security 2019), for classifiers.

A canary is a random input pattern :math:`x_c` with a random label :math:`y_c`, inserted into a
model's training data. Its exposure compares the model's loss on :math:`(x_c, y_c)` with its loss on
:math:`|R| - 1` random candidates :math:`(x', y_c)`, :math:`x'` drawn from the same distribution as
:math:`x_c`:

.. math::
    \mathrm{exposure}(c) = \log_2 |R| - \log_2 \mathrm{rank}(c),
    \qquad \mathrm{rank}(c) = 1 + |\{x' : \ell(x', y_c) < \ell(x_c, y_c)\}|,

from 0 (the canary is the least likely of the candidates) to :math:`\log_2 |R|` (the most likely:
memorised). A model that never saw the canary ranks it uniformly: mean exposure about
:math:`\log_2 |R| - \frac{1}{|R|}\sum_{r} \log_2 r \approx 1/\ln 2 \approx 1.44` bits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Canaries:
    """``n`` canaries: inputs drawn uniformly, element by element, in ``[low, high]`` (the training
    inputs' range per element) and labels drawn uniformly among ``num_classes``."""

    x: torch.Tensor
    y: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def draw(cls, n: int, train_x: torch.Tensor, num_classes: int, g: torch.Generator) -> Canaries:
        low, high = train_x.min(dim=0).values, train_x.max(dim=0).values
        canaries = cls(train_x.new_empty((0, *train_x.shape[1:])), torch.empty(0, dtype=torch.long), low, high)
        return cls(canaries.sample(n, g), torch.randint(num_classes, (n,), generator=g), low, high)

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        """``n`` inputs from the canaries' distribution (the candidates of the exposure)."""
        u = torch.rand((n, *self.low.shape), generator=g, dtype=self.low.dtype)
        return self.low + (self.high - self.low) * u

    def __len__(self) -> int:
        return len(self.y)


def exposure_from_losses(canary_loss: torch.Tensor, candidate_losses: torch.Tensor) -> torch.Tensor:
    r"""Exposure :math:`\log_2 |R| - \log_2 \mathrm{rank}` of each canary (shape ``[K]``) among its
    candidates (``candidate_losses``, shape ``[K, |R| - 1]``: the canary itself is the |R|-th); the
    rank counts the candidates with a strictly lower loss, plus one."""
    rank = 1 + (candidate_losses < canary_loss.unsqueeze(1)).sum(dim=1)
    size = candidate_losses.shape[1] + 1
    return math.log2(size) - torch.log2(rank.to(torch.float64))


@torch.no_grad()
def canary_exposures(model: nn.Module, canaries: Canaries, candidates: int, seed: int, batch_size: int = 4096) -> torch.Tensor:
    """The exposure (bits) of each canary in ``model``, among ``candidates`` = |R| inputs (the canary
    and |R| − 1 fresh draws of :meth:`Canaries.sample`, seeded by ``seed``), shape ``[K]``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)

    def losses(x: torch.Tensor, label: int) -> torch.Tensor:
        out = torch.cat([model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)])
        return F.cross_entropy(out.double(), torch.full((len(x),), label, device=device), reduction="none").cpu()

    try:
        canary_loss = torch.stack([losses(canaries.x[k : k + 1], int(canaries.y[k]))[0] for k in range(len(canaries))])
        others = torch.stack([losses(canaries.sample(candidates - 1, g), int(canaries.y[k])) for k in range(len(canaries))])
    finally:
        model.train(was_training)
    return exposure_from_losses(canary_loss, others)


def train_with_canaries(
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    canaries: Canaries,
    repeats: int,
    epochs: int,
    seed: int,
    lr: float = 2e-3,
    batch_size: int = 128,
) -> nn.Module:
    """A copy of ``teacher`` fine-tuned for ``epochs`` epochs of Adam (``lr``, minibatches of
    ``batch_size`` in a seeded order) on the training data with each canary inserted ``repeats``
    times, as a data owner's model would have been trained on data holding secrets. ``teacher`` is
    left as it was; the copy is returned in eval mode with gradients off."""
    model = copy.deepcopy(teacher)
    device = next(model.parameters()).device
    data_x = torch.cat([x, canaries.x.repeat(repeats, *([1] * (x.dim() - 1)))]).to(device)
    data_y = torch.cat([y.long(), canaries.y.repeat(repeats)]).to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(data_y), generator=g).to(device)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimiser.zero_grad(set_to_none=True)
            F.cross_entropy(model(data_x[idx]), data_y[idx]).backward()
            optimiser.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
