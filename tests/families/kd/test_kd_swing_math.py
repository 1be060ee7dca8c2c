"""kd.swing's loss and temperature rule (nbdistill/families/kd/pipelines/swing_loss.py), in float64."""

from __future__ import annotations

import math

import pytest
import torch

from nbdistill.families.kd.losses import hinton_kd
from nbdistill.families.kd.pipelines.swing_loss import nearest_distances, privacy_scores, swing_kd, swing_temperatures


def logits(seed: int, shape=(6, 5)) -> torch.Tensor:
    return 3 * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 7.5])
def test_no_noise_constant_tau_is_hinton_kd_term(temperature):
    s, t, y = logits(0), logits(1), torch.tensor([0, 1, 2, 3, 4, 0])
    swing = swing_kd(s, t, y, torch.full((6,), temperature, dtype=torch.float64), None, alpha=0.0)
    hinton = hinton_kd(s, t, y, temperature, alpha=0.0)
    assert swing["loss"].dtype == torch.float64
    assert torch.allclose(swing["loss"], hinton["loss"], rtol=0, atol=1e-12)
    assert torch.allclose(swing["kd"], hinton["kd"], rtol=0, atol=1e-12)


def test_per_example_tau_and_noise_by_hand():
    """Σ_i τ_i²·KL(softmax(z_t/τ_i + ε_i) ‖ softmax(z_s/τ_i)) / B, written out with plain softmaxes."""
    s, t, noise = logits(2, (3, 4)), logits(3, (3, 4)), logits(4, (3, 4)) / 3
    tau = torch.tensor([1.0, 2.5, 10.0], dtype=torch.float64)
    expected = 0.0
    for i in range(3):
        p = torch.softmax(t[i] / tau[i] + noise[i], -1)
        q = torch.softmax(s[i] / tau[i], -1)
        expected += tau[i] ** 2 * (p * (p.log() - q.log())).sum() / 3
    got = swing_kd(s, t, torch.zeros(3, dtype=torch.long), tau, noise, alpha=0.0)
    assert abs(got["loss"].item() - expected.item()) < 1e-12
    mixed = swing_kd(s, t, torch.zeros(3, dtype=torch.long), tau, noise, alpha=0.25)
    assert abs(mixed["loss"].item() - (0.25 * mixed["ce"] + 0.75 * got["kd"]).item()) < 1e-12


def test_nearest_distances_skip_the_example_itself():
    reference = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]], dtype=torch.float64)
    d = nearest_distances(reference, reference)
    assert d.tolist() == [1.0, 1.0, 1.0, 1.0, 7.0]
    assert nearest_distances(torch.tensor([[20.0], [0.5]], dtype=torch.float64), reference).tolist() == [10.0, 0.5]


def test_temperature_rule_on_a_hand_case():
    """Reference distances [1, 1, 1, 1, 7], q = 0.6: F(d) = share of reference distances below d;
    p = clip((F - 0.6) / 0.4, 0, 1); τ = 2 + (12 - 2)·p."""
    sorted_d = torch.tensor([1.0, 1.0, 1.0, 1.0, 7.0], dtype=torch.float64)
    d = torch.tensor([0.5, 1.0, 3.0, 7.0, 10.0], dtype=torch.float64)
    # F = [0, 0, 0.8, 0.8, 1.0] -> p = [0, 0, 0.5, 0.5, 1]
    p = privacy_scores(d, sorted_d, 0.6)
    assert torch.allclose(p, torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0], dtype=torch.float64), atol=1e-12)
    tau = swing_temperatures(p, 2.0, 12.0)
    assert torch.allclose(tau, torch.tensor([2.0, 2.0, 7.0, 7.0, 12.0], dtype=torch.float64), atol=1e-12)


def test_high_temperature_flattens_the_soft_target():
    """The KL at τ_max is computed on a target near uniform: its entropy approaches log C."""
    t = torch.tensor([[12.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    for tau, floor in ((1.0, 0.0), (100.0, math.log(4) - 0.01)):
        p = torch.softmax(t / tau, -1)
        assert -(p * p.log()).sum().item() >= floor
