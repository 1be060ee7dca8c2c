"""Canary exposure (nbdistill/families/kd/pipelines/swing_exposure.py): by hand and on small models."""

from __future__ import annotations

import math

import torch
from torch import nn

from nbdistill.families.kd.pipelines.swing_exposure import Canaries, canary_exposures, exposure_from_losses, train_with_canaries


def test_exposure_by_hand():
    canary = torch.tensor([0.1, 5.0, 2.0], dtype=torch.float64)
    others = torch.tensor(
        [
            [0.5, 0.9, 1.2],  # lowest of |R| = 4 -> rank 1 -> log2 4 = 2 bits
            [1.0, 6.0, 7.0],  # one lower -> rank 2 -> 1 bit
            [0.1, 0.2, 0.3],  # highest -> rank 4 -> 0 bits
        ],
        dtype=torch.float64,
    )
    assert exposure_from_losses(canary, others).tolist() == [2.0, 1.0, 0.0]
    # ties do not lower the rank: a loss equal to the canary's is not "more likely"
    assert exposure_from_losses(torch.tensor([1.0]), torch.tensor([[1.0] * 7])).item() == 3.0


class Memoriser(nn.Module):
    """Logit 50 for class ``label`` at exactly the canary's input, 0 elsewhere: rank 1 of |R|."""

    def __init__(self, x: torch.Tensor, label: int, classes: int = 3):
        super().__init__()
        self.register_buffer("x", x)
        self.label, self.classes = label, classes
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, inputs):
        out = torch.zeros(len(inputs), self.classes) + self.w
        hit = (inputs - self.x).abs().sum(1) < 1e-9
        out[hit, self.label] = 50.0
        return out


def test_a_memorised_canary_has_exposure_log2_r_and_an_unseen_one_about_chance():
    g = torch.Generator().manual_seed(0)
    train_x = torch.randn(50, 4, generator=g)
    canaries = Canaries.draw(1, train_x, 3, g)
    assert ((canaries.x >= canaries.low) & (canaries.x <= canaries.high)).all()
    memoriser = Memoriser(canaries.x[0], int(canaries.y[0]))
    assert canary_exposures(memoriser, canaries, candidates=256, seed=1).tolist() == [8.0]
    # a model blind to the canary: rank uniform among |R|, mean exposure ≈ 1/ln 2 over many canaries
    many = Canaries.draw(400, train_x, 3, g)
    blind = nn.Sequential(nn.Linear(4, 3))
    mean = canary_exposures(blind, many, candidates=64, seed=2).mean().item()
    assert abs(mean - 1 / math.log(2)) < 0.25


def test_train_with_canaries_is_seeded_and_leaves_the_teacher_alone():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g), torch.randint(3, (40,), generator=g)
    teacher = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    for p in teacher.parameters():
        p.requires_grad_(False)
    before = [p.clone() for p in teacher.parameters()]
    canaries = Canaries.draw(3, x, 3, torch.Generator().manual_seed(1))
    a = train_with_canaries(teacher, x, y, canaries, repeats=4, epochs=60, seed=5, lr=1e-2)
    b = train_with_canaries(teacher, x, y, canaries, repeats=4, epochs=60, seed=5, lr=1e-2)
    assert all(torch.equal(p, q) for p, q in zip(before, teacher.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    assert (a(canaries.x).argmax(1) == canaries.y).all()  # the canaries are memorised
    assert canary_exposures(a, canaries, 128, seed=3).mean() > canary_exposures(teacher, canaries, 128, seed=3).mean()
