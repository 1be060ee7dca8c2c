"""kd.knfu's core computations: the fusion rules on a case computed by hand, the Dirichlet split of
the clients, the accuracy on a client's own label distribution, and the refusals before training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.knfu_clients import (
    check_client_count,
    dirichlet_split,
    label_histograms,
    label_skew,
    own_distribution_accuracy,
    transfer_split,
)
from nbdistill.families.kd.pipelines.knfu_fusion import (
    distillation_loss,
    estimated_distributions,
    fused_targets,
    fusion_weights,
    knowledge_divergence,
)

#: Three clients' soft predictions on a transfer set of two examples (the same for both examples):
#: clients 0 and 1 lean to class 0, client 2 to class 1. As logits: log p (softmax(log p) = p).
PROBS = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]], dtype=torch.float64)
KNOWLEDGE = PROBS.log()[:, None, :].expand(3, 2, 2).clone()
TOL = 1e-6  # float64 throughout


def test_knfu_divergence_and_weights_match_the_hand_computation():
    # D_kj = KL(e_k || e_j) = sum_c e_kc log(e_kc / e_jc), by hand:
    # D_01 = 0.9 ln(0.9/0.8) + 0.1 ln(0.1/0.2) = 0.036690, D_02 = 0.8 ln 9 = 1.757780
    d = knowledge_divergence(estimated_distributions(KNOWLEDGE))
    assert d[0, 1].item() == pytest.approx(0.9 * math.log(0.9 / 0.8) + 0.1 * math.log(0.5), abs=TOL)
    assert d[0, 2].item() == pytest.approx(0.8 * math.log(9), abs=TOL)
    assert torch.diagonal(d).abs().max().item() < TOL
    # w_0j = exp(-10 D_0j) / sum: [1, e^-0.3669, e^-17.58] / 1.69290 = [0.59071, 0.40929, 0.00000]
    w = fusion_weights(KNOWLEDGE, "knfu", beta=10.0)
    assert w[0].tolist() == pytest.approx([0.59071, 0.40929, 0.0], abs=1e-5)
    assert w[1].tolist() == pytest.approx([0.390781, 0.609218, 1e-6], abs=1e-5)
    assert w[2].tolist() == pytest.approx([0.0, 1.1e-5, 0.999989], abs=1e-5)
    assert torch.allclose(w.sum(1), torch.ones(3, dtype=torch.float64), atol=TOL)


def test_knfu_fused_target_is_the_weighted_mixture_of_soft_predictions():
    w = fusion_weights(KNOWLEDGE, "knfu", beta=10.0)
    target = torch.softmax(fused_targets(KNOWLEDGE, w), dim=-1)
    # client 0: 0.59071·[0.9, 0.1] + 0.40929·[0.8, 0.2] = [0.859071, 0.140929]; client 2 keeps its own
    assert target[0, 0].tolist() == pytest.approx([0.859071, 0.140929], abs=1e-5)
    assert target[2, 1].tolist() == pytest.approx([0.1, 0.9], abs=1e-4)


def test_fusion_weights_follow_their_rule_at_any_temperature():
    fused = fused_targets(KNOWLEDGE, fusion_weights(KNOWLEDGE, "fedkd"), temperature=3.0)
    expected = torch.softmax(KNOWLEDGE / 3.0, dim=-1).mean(0, keepdim=True).expand(3, 2, 2)
    assert torch.allclose(torch.softmax(fused / 3.0, dim=-1), expected, atol=TOL)  # T·log p̄ has tempered softmax p̄


def test_fedkd_is_the_uniform_average_and_local_fuses_nothing():
    assert torch.allclose(fusion_weights(KNOWLEDGE, "fedkd"), torch.full((3, 3), 1 / 3, dtype=torch.float64))
    fused = torch.softmax(fused_targets(KNOWLEDGE, fusion_weights(KNOWLEDGE, "fedkd")), dim=-1)
    assert fused[1, 0].tolist() == pytest.approx([0.6, 0.4], abs=TOL)  # (0.9 + 0.8 + 0.1) / 3
    local = fusion_weights(KNOWLEDGE, "local")
    assert torch.equal(local, torch.eye(3, dtype=torch.float64))
    own = fused_targets(KNOWLEDGE, local)
    assert torch.allclose(torch.softmax(own, -1), PROBS[:, None, :].expand(3, 2, 2), atol=TOL)
    assert distillation_loss(KNOWLEDGE[0], own[0]).item() == pytest.approx(0.0, abs=TOL)  # already at its target


def test_knfu_with_beta_zero_is_the_uniform_average():
    assert torch.allclose(fusion_weights(KNOWLEDGE, "knfu", beta=0.0), fusion_weights(KNOWLEDGE, "fedkd"), atol=TOL)


def test_distillation_loss_is_t_squared_kl_to_the_fused_target():
    student = torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    target = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    p_t, p_s = torch.softmax(target / 2, -1)[0], torch.softmax(student / 2, -1)[0]
    by_hand = 4 * sum(p_t[c] * math.log(p_t[c] / p_s[c]) for c in range(2))
    assert distillation_loss(student, target, temperature=2.0).item() == pytest.approx(float(by_hand), abs=TOL)


# -- the clients' split ----------------------------------------------------------------------------
LABELS = np.repeat(np.arange(10), 50)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 100.0])
def test_dirichlet_split_is_a_seeded_partition_with_no_empty_client(alpha):
    parts = dirichlet_split(LABELS, 7, alpha, seed=3)
    assert len(parts) == 7 and all(len(p) for p in parts)
    together = np.concatenate(parts)
    assert len(together) == len(LABELS) and np.array_equal(np.sort(together), np.arange(len(LABELS)))
    again = dirichlet_split(LABELS, 7, alpha, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_label_skew_grows_as_alpha_falls():
    skew = {
        a: np.mean([label_skew(label_histograms(LABELS, dirichlet_split(LABELS, 5, a, s), 10)) for s in range(5)])
        for a in (0.05, 1.0, 100.0)
    }
    assert skew[0.05] > skew[1.0] > skew[100.0]
    assert skew[0.05] > 0.5 and skew[100.0] < 0.1


def test_more_clients_than_examples_is_refused_naming_the_numbers():
    with pytest.raises(
        ConfigError,
        match=r"clients=8 simulated clients need at least one training example each, but the training split has 5; lower clients to at most 5",
    ):
        dirichlet_split(np.arange(5) % 2, 8, 1.0, seed=0)
    check_client_count(5, 5)  # as many clients as examples is fine


def test_a_split_that_keeps_leaving_a_client_empty_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"alpha=0\.01 left a client with no data in 100 Dirichlet draws of 6 examples over clients=6; raise alpha",
    ):
        dirichlet_split(np.array([0, 0, 0, 1, 1, 1]), 6, 0.01, seed=0)


def test_transfer_split_holds_out_a_disjoint_share():
    private, public = transfer_split(100, 0.2, seed=1)
    assert len(public) == 20 and len(private) == 80
    assert np.array_equal(np.sort(np.concatenate([private, public])), np.arange(100))
    with pytest.raises(ConfigError, match="leaves none for the clients"):
        transfer_split(1, 0.5, seed=0)


def test_own_distribution_accuracy_weights_per_class_accuracy_by_the_clients_labels():
    labels = torch.tensor([0, 0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 0]), 3).float()  # class accs: 0.5, 1, 0
    assert own_distribution_accuracy(logits, labels, np.array([3.0, 1.0, 0.0])) == pytest.approx(0.75 * 0.5 + 0.25 * 1.0)
    assert own_distribution_accuracy(logits, labels, np.array([0.0, 0.0, 1.0])) == pytest.approx(0.0)
