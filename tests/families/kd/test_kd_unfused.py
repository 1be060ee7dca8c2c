"""kd.unfused: the self-distillation loss against a hand computation, its layers, bad input, a seeded fit."""

import pytest
import torch
import torch.nn.functional as F

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.unfused import shallow_layers
from nbdistill.families.kd.pipelines.unfused_loss import ALPHA, BETA, GAMMA, unfused_self_distillation

TINY = {"encoder_width": 16, "pretrain_epochs": 2, "selfdistill_epochs": 2, "clusters": 5}


def logits(seed, shape=(6, 5)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_self_distillation_matches_the_official_formula_by_hand():
    deep, shallow = logits(0), [logits(1), logits(2)]
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    terms = unfused_self_distillation(deep, shallow, y)
    expected = F.cross_entropy(deep, y)
    for z in shallow:  # the official code: nn.KLDivLoss(batchmean)(log_softmax(z), softmax(deep)) and loss_fn_mse
        kl = F.kl_div(F.log_softmax(z, 1), F.softmax(deep, 1), reduction="batchmean")
        cos = (2 - 2 * (z / z.norm(dim=1, keepdim=True) * deep / deep.norm(dim=1, keepdim=True)).sum(1)).mean()
        expected = expected + ALPHA * F.cross_entropy(z, y) + BETA * kl + GAMMA * cos
    assert torch.allclose(terms["loss"], expected, atol=1e-12)
    only_deep = unfused_self_distillation(deep, [], y)
    assert torch.allclose(only_deep["loss"], F.cross_entropy(deep, y)) and "kl" not in only_deep


def test_shallow_layers_are_the_activations_before_the_last():
    assert shallow_layers(nd.models.MLP(64, [64, 32], 10)) == ["net.1"]
    assert shallow_layers(nd.models.MLP(64, [32], 10)) == []


def test_label_fraction_zero_is_refused_when_built():
    with pytest.raises(ConfigError, match="label_fraction = 0.0 leaves no labelled example"):
        nd.get_method("kd.unfused").module_class(nd.models.MLP(64, [8], 10), label_fraction=0.0)


def fit(tmp_path, name):
    torch.manual_seed(0)  # the same fresh student
    return nd.fit(
        "kd.unfused", student=nd.models.MLP(64, [16, 8], 10), data=nd.data.Digits(n_train=100, batch_size=50),
        label_fraction=0.2, runs_root=tmp_path, run_id=name, max_epochs=1, seed=0, **TINY,
    )  # fmt: skip


@pytest.mark.slow
def test_a_seeded_fit_clusters_self_distils_and_fine_tunes(tmp_path):
    run = fit(tmp_path, "a")
    assert run.status == "finished"
    metrics = run.metrics
    assert metrics["labels/labelled"] == 20
    assert run.scalars("unfused/selfdistill_loss")[0] == [1, 2]
    assert 0 < metrics["unfused/cluster_purity"] <= 1 and 0 <= metrics["test/student_acc"] <= 1
    again = fit(tmp_path, "b")
    for p, q in zip(run.student().parameters(), again.student().parameters()):
        assert torch.equal(p, q)
