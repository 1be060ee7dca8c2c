"""kd.simclr_v2: the distillation loss against other ways of computing it, the bad inputs, a seeded fit."""

import pytest
import torch
import torch.nn.functional as F

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.simclr_v2_loss import simclr_v2_distillation, soft_cross_entropy

TINY = {"encoder_width": 16, "pretrain_epochs": 2, "finetune_epochs": 2}


def logits(seed, shape=(6, 4)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("tau", [1.0, 2.0, 5.0])
def test_soft_cross_entropy_matches_a_loop_and_torch_soft_label_ce(tau):
    t, s = logits(0), logits(1)
    loop = torch.tensor(
        [-sum(torch.softmax(t[i] / tau, 0)[y] * torch.log_softmax(s[i] / tau, 0)[y] for y in range(4)) for i in range(6)]
    )
    assert torch.allclose(soft_cross_entropy(t, s, tau), loop, atol=1e-12)
    torch_ce = F.cross_entropy(s / tau, torch.softmax(t / tau, 1), reduction="none")  # soft targets
    assert torch.allclose(soft_cross_entropy(t, s, tau), torch_ce, atol=1e-12)


def test_distillation_gradient_is_hintons_kl_gradient():
    t, tau = logits(2), 3.0
    s1, s2 = logits(3).requires_grad_(), logits(3).requires_grad_()
    simclr_v2_distillation(s1, t, tau)["loss"].backward()
    hinton = tau**2 * F.kl_div(F.log_softmax(s2 / tau, 1), F.softmax(t / tau, 1), reduction="batchmean")
    hinton.backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-12)
    entropy = -(F.softmax(t / tau, 1) * F.log_softmax(t / tau, 1)).sum(1).mean()
    assert torch.allclose(simclr_v2_distillation(s1, t, tau)["distill"], hinton + tau**2 * entropy, atol=1e-12)


def test_alpha_adds_the_labelled_cross_entropy():
    t, s, sl = logits(4), logits(5), logits(6, (3, 4))
    y = torch.tensor([0, 3, 1])
    terms = simclr_v2_distillation(s, t, 1.0, 0.25, sl, y)
    assert torch.allclose(terms["ce"], F.cross_entropy(sl, y))
    assert torch.allclose(terms["loss"], 0.75 * terms["distill"] + 0.25 * terms["ce"])
    assert "ce" not in simclr_v2_distillation(s, t, 1.0)


def test_label_fraction_zero_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="label_fraction"):
        nd.fit("kd.simclr_v2", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=60), label_fraction=0.0,
               runs_root=tmp_path, max_epochs=1, **TINY)  # fmt: skip
    assert not any(tmp_path.rglob("*.ckpt"))


def test_a_fraction_leaving_a_class_unlabelled_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"label_fraction = 0.05 of 60 training examples leaves class\(es\) \[.*\] with no"):
        nd.fit("kd.simclr_v2", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=60), label_fraction=0.05,
               runs_root=tmp_path, max_epochs=1, **TINY)  # fmt: skip


def fit(tmp_path, name, **hparams):
    torch.manual_seed(0)
    return nd.fit(
        "kd.simclr_v2", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=100, batch_size=50),
        label_fraction=0.2, runs_root=tmp_path, run_id=name, max_epochs=1, seed=0, **{**TINY, **hparams},
    )  # fmt: skip


@pytest.mark.slow
def test_a_seeded_fit_builds_its_teacher_and_distils(tmp_path):
    run = fit(tmp_path, "a", alpha=0.5)
    assert run.status == "finished"
    metrics = run.metrics
    assert metrics["labels/labelled"] == 20
    assert run.scalars("ssl/loss")[0] == [1, 2] and run.scalars("teacher/finetune_loss")[0] == [1, 2]
    assert 0 <= metrics["teacher/val_acc"] <= 1 and "test/teacher_acc" in metrics
    assert 0 <= metrics["test/student_acc"] <= 1
    again = fit(tmp_path, "b", alpha=0.5)
    for p, q in zip(run.student().parameters(), again.student().parameters()):
        assert torch.equal(p, q)
