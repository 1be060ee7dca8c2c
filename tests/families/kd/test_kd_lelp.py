"""LELP against its definition (shared/reference/kd.md §6): subclasses sum to classes, S = 1 is KD."""

import pytest
import torch
from torch import nn

import nbdistill as nd
from nbdistill.families.kd.losses import class_logits_from_subclasses, hinton_kd, lelp_loss, subclass_log_targets, subclass_scores
from nbdistill.families.kd.subclasses import SubclassStudent, few_class_teacher, fit_subclass_directions, null_space_projector


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_teacher_subclass_probabilities_sum_to_its_class_probabilities():
    g = _gen()
    zt = torch.randn(7, 3, generator=g, dtype=torch.float64)
    scores = torch.randn(7, 3, 4, generator=g, dtype=torch.float64)
    for T, beta in ((1.0, 1.0), (4.0, 0.3)):
        p = subclass_log_targets(zt, scores, T, beta).exp().view(7, 3, 4)
        assert torch.allclose(p.sum(-1), torch.softmax(zt / T, -1), atol=1e-12)
        assert torch.allclose(p.sum((1, 2)), torch.ones(7, dtype=torch.float64))


def test_student_class_probabilities_are_sums_of_its_subclass_probabilities():
    u = torch.randn(5, 2 * 6, generator=_gen(1), dtype=torch.float64)
    q = torch.softmax(u, -1).view(5, 2, 6).sum(-1)
    assert torch.allclose(torch.softmax(class_logits_from_subclasses(u, 2), -1), q, atol=1e-12)


def test_one_subclass_reduces_to_hinton_kd():
    g = _gen(2)
    zs, zt = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    scores = torch.randn(6, 3, 1, generator=g, dtype=torch.float64)  # any scores: one subclass takes all
    for alpha in (0.0, 0.3):
        ours = lelp_loss(zs, subclass_log_targets(zt, scores, 4.0, 0.7), y, 3, 4.0, alpha)
        ref = hinton_kd(zs, zt, y, temperature=4.0, alpha=alpha)
        assert torch.allclose(ours["loss"], ref["loss"], rtol=1e-12)
        assert torch.allclose(ours["kd"], ref["kd"], rtol=1e-12)


def test_null_space_projection_removes_what_the_logits_see():
    w = torch.randn(3, 8, generator=_gen(3), dtype=torch.float64)
    p = null_space_projector(w)
    assert torch.allclose(w @ p, torch.zeros(3, 8, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(p @ p, p, atol=1e-12)


def test_directions_are_the_principal_components_of_each_class():
    g = _gen(4)
    # class 0 spread along e0, class 1 along e1 (then e2): PCA must find them
    e0 = torch.randn(200, 1, generator=g, dtype=torch.float64) * torch.tensor([[5.0, 0.1, 0.0, 0.0]])
    e1 = torch.randn(200, 1, generator=g, dtype=torch.float64) * torch.tensor([[0.0, 4.0, 0.0, 0.0]])
    e1 = e1 + torch.randn(200, 1, generator=g, dtype=torch.float64) * torch.tensor([[0.0, 0.0, 2.0, 0.0]])
    emb = torch.cat([e0, e1]) + 0.01 * torch.randn(400, 4, generator=g, dtype=torch.float64)
    labels = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    fitted = fit_subclass_directions(emb, labels, 2, 2)
    assert abs(fitted["directions"][0, 0, 0]) > 0.99 and abs(fitted["directions"][1, 0, 1]) > 0.99
    assert abs(fitted["directions"][1, 1, 2]) > 0.99
    scores = subclass_scores(emb, fitted, None)
    assert torch.allclose(scores[:200, 0].std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-6)


def test_subclass_student_widens_only_the_last_linear_layer():
    net = nd.models.MLP(64, [8], 3)
    student = SubclassStudent(net, num_classes=3, subclasses=4)
    x = torch.randn(2, 64)
    assert student.subclass_logits(x).shape == (2, 12) and student(x).shape == (2, 3)
    assert net(x).shape == (2, 3)  # the network given is left as it was
    with pytest.raises(nd.ConfigError, match="expects one per class"):
        SubclassStudent(nd.models.MLP(64, [8], 5), num_classes=3, subclasses=2)


def test_too_many_subclasses_and_a_teacher_without_linear_head_are_refused():
    teacher = nd.zoo.teacher("digits-mlp")  # 128-d embedding, 10 classes: 118 directions after projection
    with pytest.raises(nd.ConfigError, match="subclasses=20 exceeds"):
        nd.build(
            "kd.lelp",
            nd.models.MLP(64, [8], 10),
            teacher=nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)),
            subclasses=20,
        )
    with pytest.raises(nd.ConfigError, match="last layer is an nn.Linear"):
        nd.build("kd.lelp", nd.models.MLP(64, [8], 10), teacher=nn.Sequential(nn.Flatten()))
    nd.build("kd.lelp", nd.models.MLP(64, [8], 10), teacher=teacher, subclasses=20)


def test_fit_on_a_two_class_subset():
    data = nd.data.Digits(classes=[3, 8], n_train=60)
    teacher = nd.zoo.teacher("digits-mlp")
    two_class = few_class_teacher(teacher, [3, 8])
    x = data.dataset("test").tensors[0]
    with torch.no_grad():
        # The 2-row last layer and the 10-row one are different matmul shapes, so different CPU kernels:
        # equal up to float32 rounding of the logits (|logit| < ~30; 1.9e-6 apart on an AMD EPYC).
        torch.testing.assert_close(two_class(x), teacher(x)[:, [3, 8]], rtol=1e-5, atol=1e-5)
    run = nd.fit("kd.lelp", student=nd.models.MLP(64, [8], 2), teacher=two_class, data=data, max_epochs=1, subclasses=3)
    assert run.status == "finished" and 0.0 <= run.metrics["test/student_acc"] <= 1.0
    assert run.module.sub_scale.min() > 0  # the directions were fitted on the training split


@pytest.mark.slow
def test_example_config_runs_from_the_cli(run_example_config, example_hparams):
    info = run_example_config("kd_lelp_digits.yaml", "kd.lelp")
    assert example_hparams("kd_lelp_digits.yaml").items() <= info["hparams"].items()
