"""kd.fair's core computations: the parity gap, the distance covariance (the fairness loss) and the
objective, on tiny tensors worked by hand and against a second, independent formula (float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

from nbdistill.families.kd.pipelines.fair_metrics import distance_covariance, fair_distillation, group_rates, parity_gap


def test_parity_gap_of_two_classes_by_hand():
    # s = 0: predictions 1, 1, 0 -> P(ŷ=1|s=0) = 2/3; s = 1: 0, 1, 0 -> 1/3; the gap is 1/3
    pred = torch.tensor([1, 1, 0, 0, 1, 0])
    s = torch.tensor([0, 0, 0, 1, 1, 1])
    assert parity_gap(pred, s, 2) == pytest.approx(1 / 3, abs=1e-12)
    expected = torch.tensor([[1 / 3, 2 / 3], [2 / 3, 1 / 3]], dtype=torch.float64)
    torch.testing.assert_close(group_rates(pred, s, 2), expected, rtol=0, atol=1e-12)


def test_parity_gap_of_several_classes_is_the_largest_class_difference():
    # s = 0 predicts classes 0 and 1 (1/2 each), s = 1 only class 2: class 2 differs by 1
    assert parity_gap(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 1, 1]), 3) == pytest.approx(1.0)
    # equal rates in both groups: parity
    assert parity_gap(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]), 2) == 0.0


def test_parity_gap_without_one_group_is_nan():
    assert math.isnan(parity_gap(torch.tensor([0, 1]), torch.tensor([1, 1]), 2))


def test_distance_covariance_of_two_points_by_hand():
    # a = [[0, 3], [3, 0]], all means 1.5 -> A = a - 1.5; b = [[0, 1], [1, 0]] -> B = b - 0.5;
    # mean(A * B) = (4 * 1.5 * 0.5) / 4 = 0.75
    z = torch.tensor([[0.0], [3.0]], dtype=torch.float64)
    assert distance_covariance(z, torch.tensor([0, 1])).item() == pytest.approx(0.75, abs=1e-12)


def _dcov_second_form(z, s):
    """Székely, Rizzo & Bakirov (2007), eq. 2.8: dCov²_n = S1 + S2 - 2 S3, with explicit loops."""
    n = len(z)
    a = [[float(torch.linalg.norm(z[i] - z[j])) for j in range(n)] for i in range(n)]
    b = [[abs(float(s[i]) - float(s[j])) for j in range(n)] for i in range(n)]
    s1 = sum(a[i][j] * b[i][j] for i in range(n) for j in range(n)) / n**2
    s2 = sum(map(sum, a)) / n**2 * sum(map(sum, b)) / n**2
    s3 = sum(sum(a[i]) / n * sum(b[i]) / n for i in range(n)) / n
    return s1 + s2 - 2 * s3


def test_distance_covariance_matches_the_second_form():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 3, generator=g, dtype=torch.float64)
    s = torch.randint(0, 2, (12,), generator=g)
    z[s == 1] += 0.7  # dependent on s
    value = distance_covariance(z, s).item()
    assert value == pytest.approx(_dcov_second_form(z, s), abs=1e-12)
    assert value > 0


def test_distance_covariance_is_zero_for_a_constant_attribute_and_has_finite_gradients_at_ties():
    z = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], requires_grad=True)  # repeated rows
    assert distance_covariance(z, torch.zeros(4)).item() == pytest.approx(0.0, abs=1e-7)
    distance_covariance(z, torch.tensor([0, 1, 0, 1])).backward()
    assert torch.isfinite(z.grad).all()


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    b = 10
    return dict(
        student_logits=torch.randn(b, 3, generator=g, dtype=torch.float64),
        teacher_logits=torch.randn(b, 3, generator=g, dtype=torch.float64),
        labels=torch.randint(0, 3, (b,), generator=g),
        student_latent=torch.randn(b, 4, generator=g, dtype=torch.float64),
        projected_latent=torch.randn(b, 5, generator=g, dtype=torch.float64),
        teacher_latent=torch.randn(b, 5, generator=g, dtype=torch.float64),
        sensitive=torch.randint(0, 2, (b,), generator=g),
    )


def test_fairness_weight_zero_is_plain_distillation_plus_utility():
    x = _inputs()
    terms = fair_distillation(**x, quality=0.7, fairness=0.0, temperature=3.0, alpha=0.2)
    # independently: MSE of the latents, α·CE + (1 − α)·T²·KL written out with log-softmaxes
    mse = ((x["projected_latent"] - x["teacher_latent"]) ** 2).mean()
    log_pt = F.log_softmax(x["teacher_logits"] / 3.0, -1)
    log_ps = F.log_softmax(x["student_logits"] / 3.0, -1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()
    ce = -F.log_softmax(x["student_logits"], -1)[torch.arange(10), x["labels"]].mean()
    expected = 0.7 * mse + 0.2 * ce + 0.8 * 9.0 * kl
    assert terms["loss"].item() == pytest.approx(expected.item(), abs=1e-12)
    assert terms["quality"].item() == pytest.approx(mse.item(), abs=1e-12)
    assert terms["utility"].item() == pytest.approx((0.2 * ce + 7.2 * kl).item(), abs=1e-12)


def test_fairness_weight_adds_the_distance_covariance_of_the_student_latent():
    x = _inputs(1)
    plain = fair_distillation(**x, quality=1.0, fairness=0.0, temperature=2.0, alpha=0.1)["loss"]
    fair = fair_distillation(**x, quality=1.0, fairness=4.0, temperature=2.0, alpha=0.1)
    dcov = distance_covariance(x["student_latent"], x["sensitive"])
    assert fair["loss"].item() == pytest.approx((plain + 4.0 * dcov).item(), abs=1e-12)
    assert fair["fairness"].item() == pytest.approx(dcov.item(), abs=1e-12)
