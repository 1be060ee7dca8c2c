"""The dataset-distillation formulas on cases computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from nbdistill.families.dataset.losses import (
    bn_statistics_loss,
    gradient_penalty,
    layerwise_cosine_distance,
    mean_embedding_distance,
    normalised_parameter_distance,
    soft_cross_entropy,
)


def test_layerwise_cosine_distance_by_hand():
    # rows (1,0)·(1,1): cos = 1/√2; rows (0,1)·(0,1): cos = 1 -> d = 1 − 1/√2 (up to DC's 1e-6)
    a = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    b = [torch.tensor([[1.0, 1.0], [0.0, 1.0]])]
    assert float(layerwise_cosine_distance(a, b)) == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-5)


def test_layerwise_cosine_distance_rows_of_conv_kernels_and_biases():
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 3)
    bias = torch.randn(4)
    assert float(layerwise_cosine_distance([weight, bias], [weight.clone(), bias.clone()])) == pytest.approx(0, abs=1e-5)
    scaled = weight * torch.tensor([2.0, 0.5, 7.0, 1.0]).view(4, 1, 1, 1)  # positive rescaling of output rows
    other = torch.randn(4)  # a different bias gradient: 1-D gradients do not count
    assert float(layerwise_cosine_distance([weight, bias], [scaled, other])) == pytest.approx(0, abs=1e-5)
    opposite = float(layerwise_cosine_distance([weight], [-weight]))
    assert opposite == pytest.approx(2 * 4, abs=1e-4)  # cos = −1 on each of the 4 rows


def test_mean_embedding_distance_by_hand_and_invariances():
    real = torch.tensor([[0.0, 2.0], [2.0, 0.0]])  # mean (1, 1)
    syn = torch.tensor([[3.0, 1.0]])  # mean (3, 1)
    assert float(mean_embedding_distance(real, syn)) == pytest.approx(4.0)
    torch.manual_seed(1)
    batch = torch.randn(8, 5)
    assert float(mean_embedding_distance(batch, batch)) == 0.0
    assert float(mean_embedding_distance(batch, batch[torch.randperm(8)])) == pytest.approx(0, abs=1e-6)


def test_normalised_parameter_distance_by_hand():
    start, target = torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0])  # expert moved 5
    assert float(normalised_parameter_distance(start, target, start)) == 1.0
    assert float(normalised_parameter_distance(target, target, start)) == 0.0
    assert float(normalised_parameter_distance(torch.tensor([3.0, 0.0]), target, start)) == pytest.approx(16 / 25)


def test_bn_statistics_loss_by_hand():
    zeros, ones = torch.zeros(2), torch.ones(2)
    assert float(bn_statistics_loss([zeros, ones], [ones, ones], [zeros, ones], [ones, ones])) == 0.0
    # first layer: mean off by (3, 4) -> 5, weighted 10; second layer: variance off by (0, 2) -> 2
    means = [torch.tensor([3.0, 4.0]), zeros]
    variances = [ones, torch.tensor([1.0, 3.0])]
    value = bn_statistics_loss(means, variances, [zeros, zeros], [ones, ones], first_multiplier=10.0)
    assert float(value) == pytest.approx(10 * 5 + 2)


def test_gradient_penalty_and_soft_cross_entropy():
    grads = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1
    assert float(gradient_penalty(grads)) == pytest.approx((16 + 0) / 2)
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    assert float(soft_cross_entropy(logits, F.one_hot(y, 3).float())) == pytest.approx(
        float(F.cross_entropy(logits, y)), rel=1e-6
    )
    assert float(soft_cross_entropy(logits, y)) == pytest.approx(float(F.cross_entropy(logits, y)))
