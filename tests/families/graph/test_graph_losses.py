"""Graph-family losses (GLNN, FF-G2M, Mirage) against sums written out by hand (plain Python floats)."""

import math

import pytest
import torch

from nbdistill.families.graph import losses

S = [[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]]  # student logits of 3 nodes, 2 classes
T = [[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]]  # teacher logits
Y = [0, 1, 1]
PATH = [(0, 1), (1, 0), (1, 2), (2, 1)]  # the path 0 - 1 - 2, both directions


def softmax(z, tau=1.0):
    e = [math.exp(v / tau) for v in z]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def ce(z, y):
    return -math.log(softmax(z)[y])


def t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_glnn_by_hand():
    label_mask = torch.tensor([True, False, True])
    got = losses.glnn(t(S), t(T), torch.tensor(Y), label_mask, lam=0.3)
    hand_ce = (ce(S[0], 0) + ce(S[2], 1)) / 2
    hand_kd = sum(kl(softmax(T[i]), softmax(S[i])) for i in range(3)) / 3
    assert got["ce"].item() == pytest.approx(hand_ce)
    assert got["kd"].item() == pytest.approx(hand_kd)
    assert got["loss"].item() == pytest.approx(0.3 * hand_ce + 0.7 * hand_kd)


def test_glnn_limits():
    mask = torch.tensor([True, True, False])
    assert losses.glnn(t(S), t(S), torch.tensor(Y), mask)["kd"].item() == pytest.approx(0.0, abs=1e-12)
    alone = losses.glnn(t(S), t(T), torch.tensor(Y), mask, lam=1.0)
    assert alone["loss"].item() == pytest.approx(alone["ce"].item())  # λ = 1: the MLP trained alone


def test_low_frequency_term_by_hand():
    got = losses.low_frequency_kl(t(S), t(T), torch.tensor(PATH).t())
    # message j -> i: the student at i against the teacher at j
    hand = sum(kl(softmax(T[j]), softmax(S[i])) for j, i in PATH) / len(PATH)
    assert got.item() == pytest.approx(hand)


def test_high_frequency_term_by_hand():
    tau = 1.5
    got = losses.high_frequency_kl(t(S), t(T), torch.tensor(PATH).t(), tau)

    def q(z, i, j):
        return softmax([abs(a - b) for a, b in zip(z[i], z[j])], tau)

    hand = sum(kl(q(T, i, j), q(S, i, j)) for i, j in PATH) / len(PATH)
    assert got.item() == pytest.approx(hand)


def test_ff_g2m_by_hand():
    label_mask = torch.tensor([True, True, False])
    got = losses.ff_g2m(t(S), t(T), torch.tensor(Y), label_mask, torch.tensor(PATH).t(), lam=0.4, tau=1.5)
    with_loops = PATH + [(0, 0), (1, 1), (2, 2)]
    hand_lfd = sum(kl(softmax(T[j]), softmax(S[i])) for j, i in with_loops) / len(with_loops)
    hand_ce = (ce(S[0], 0) + ce(S[1], 1)) / 2
    assert got["lfd"].item() == pytest.approx(hand_lfd)
    assert got["loss"].item() == pytest.approx(0.4 * hand_ce + 0.6 * (hand_lfd + got["hfd"].item()))


def test_self_loops_only_reduce_ff_g2m_to_glnn_and_no_edges_to_nothing():
    loops = torch.arange(3).repeat(2, 1)
    glnn_kd = losses.glnn(t(S), t(T), torch.tensor(Y), torch.ones(3, dtype=torch.bool))["kd"]
    assert losses.low_frequency_kl(t(S), t(T), loops).item() == pytest.approx(glnn_kd.item())
    assert losses.high_frequency_kl(t(S), t(T), loops).item() == pytest.approx(0.0, abs=1e-12)
    none = torch.zeros(2, 0, dtype=torch.long)
    assert losses.low_frequency_kl(t(S), t(T), none).item() == 0.0
    assert losses.high_frequency_kl(t(S), t(T), none).item() == 0.0
    edgeless = losses.ff_g2m(t(S), t(T), torch.tensor(Y), torch.ones(3, dtype=torch.bool), none)
    assert edgeless["lfd"].item() == pytest.approx(glnn_kd.item()) and edgeless["hfd"].item() == 0.0


def test_labelled_ce_is_the_mlp_alone_on_the_labelled_nodes():
    got = losses.labelled_ce(t(S), torch.tensor(Y), torch.tensor([False, True, True]))
    assert got["loss"].item() == got["ce"].item() == pytest.approx((ce(S[1], 1) + ce(S[2], 1)) / 2)


def test_mirage_loss_by_hand():
    weight = losses.class_weights([0, 0, 1], 2)  # the distilled set: two tree sets of class 0, one of class 1
    assert weight.tolist() == pytest.approx([3 / 4, 3 / 2])
    full = [[0.0, 1.0], [2.0, 0.0]]
    got = losses.mirage(t(S), torch.tensor(Y), weight.double(), t(full), torch.tensor([1, 1]))
    w = [0.75, 1.5, 1.5]  # PyTorch's weighted mean: sum(w_y * CE) / sum(w_y)
    hand_distilled = sum(w[i] * ce(S[i], Y[i]) for i in range(3)) / sum(w)
    hand_full = (ce(full[0], 1) + ce(full[1], 1)) / 2
    assert got["distilled_ce"].item() == pytest.approx(hand_distilled)
    assert got["full_ce"].item() == pytest.approx(hand_full)
    assert got["loss"].item() == pytest.approx(hand_distilled + hand_full)
    alone = losses.mirage(t(S), torch.tensor(Y))
    assert set(alone) == {"distilled_ce", "loss"}
    assert alone["loss"].item() == pytest.approx(sum(ce(S[i], Y[i]) for i in range(3)) / 3)
