"""The KD family on the core contract: one KL for every loss, hyper-parameters declared once, the
parts a method builds (a loaded robust teacher, exit heads) and what its evaluation reports."""

import pytest
import torch

import nbdistill as nd
from nbdistill.core import divergence
from nbdistill.core.hparams import declared_hparams
from nbdistill.families.kd import losses
from nbdistill.families.kd.losses import feature_based, lelp, logits, mtard


def _logits(seed=0, b=5, c=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64), torch.randn(b, c, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    "module, call",
    [
        (logits, lambda zs, zt, y: losses.hinton_kd(zs, zt, y, 3.0, 0.2)),
        (logits, lambda zs, zt, y: losses.signal_kd(zs, zt, y, 3.0, 0.7)),
        (logits, lambda zs, zt, y: losses.dkd_parts(zs, zt, y, 3.0)),
        (feature_based, lambda zs, zt, y: losses.self_distillation(zs, zs, [zt], [zt], y)),
        (mtard, lambda zs, zt, y: losses.tempered_teacher_kl(zt, zs, 2.0)),
        (lelp, lambda zs, zt, y: losses.lelp_loss(zs.repeat(1, 2), zt.repeat(1, 2).log_softmax(-1), y, 4, 3.0)),
    ],
)
def test_every_kl_of_the_family_is_the_core_one(monkeypatch, module, call):
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return divergence.kl_divergence(*args, **kwargs)

    monkeypatch.setattr(module, "kl_divergence", counted)
    zs, zt = _logits()
    call(zs, zt, torch.tensor([0, 1, 2, 3, 0]))
    assert calls, f"{module.__name__} computes a KL of its own"


def test_every_method_declares_its_hyper_parameters_once():
    for name in nd.methods("kd"):
        cls = nd.get_method(name).module_class
        assert getattr(cls.__init__, "_declared", False), f"{name} writes its own __init__"
        assert nd.get_method(name).hparams == declared_hparams(cls)


def test_mtard_loads_and_freezes_the_robust_teacher_it_names():
    module = nd.build("kd.mtard", nd.models.MLP(64, [8], 10), nd.zoo.teacher("digits-mlp"))
    assert module.robust_teacher == "digits-mlp-robust"  # the hyper-parameter keeps its name and value
    assert len(module.teachers) == 2 and module.robust_model is module.teachers[1]
    assert not any(p.requires_grad for p in module.robust_model.parameters()) and not module.robust_model.training
    assert module.hparams["robust_teacher"] == "digits-mlp-robust"


def test_hierarchical_self_reports_each_exit_on_the_test_split_too():
    run = nd.fit("kd.hierarchical_self", student=nd.models.MLP(64, [16, 8], 10), data=nd.data.Digits(n_train=100), max_epochs=1)
    assert 0.0 <= run.metrics["test/exit1_acc"] <= 1.0 and "test/exit2_acc" not in run.metrics
    assert run.module.exits == "net.1" and run.module.exit_names == ["net.1"]
