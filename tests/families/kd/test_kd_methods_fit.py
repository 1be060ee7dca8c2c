"""Every KD method trains end to end (nd.fit and the CLI) and refuses bad input before training."""

import math

import pytest
import torch

import nbdistill as nd
from nbdistill.families.kd.quantize import quantize

METHODS = ["kd.dkd", "kd.pld", "kd.fitnet", "kd.ofa", "kd.mi_alpha", "kd.hierarchical_self", "kd.quantized", "kd.moe_teacher"]
#: one out-of-range value per method, and the words of the error it must raise
BAD = {
    "kd.dkd": ({"beta": -1.0}, "'beta' = -1.0 is outside its range"),
    "kd.pld": ({"temperature": 0.5}, "'temperature' = 0.5 is outside its range"),
    "kd.fitnet": ({"hint_epochs": -2}, "'hint_epochs' = -2 is outside its range"),
    "kd.ofa": ({"eps": 0.0}, "'eps' = 0.0 is outside its range"),
    "kd.mi_alpha": ({"mi_alpha": 1.5}, "'mi_alpha' = 1.5 is outside its range"),
    "kd.hierarchical_self": ({"alpha": 2.0}, "'alpha' = 2.0 is outside its range"),
    "kd.quantized": ({"bits": 0}, "'bits' = 0 is outside its range"),
    "kd.moe_teacher": ({"teacher_weight": 1.5}, "'teacher_weight' = 1.5 is outside its range"),
}


def _setting(method):
    """Teacher, student and data each method is shown with."""
    if method == "kd.ofa":  # heterogeneous: conv teacher, MLP student on the same images
        return nd.zoo.teacher("digits-convnet"), nd.models.MLP(64, [16, 8], 10), nd.data.Digits(n_train=100, image=True)
    if method == "kd.hierarchical_self":  # needs no teacher
        return None, nd.models.MLP(64, [16, 8], 10), nd.data.Digits(n_train=100)
    teacher = nd.zoo.teacher("digits-moe" if method == "kd.moe_teacher" else "digits-mlp")
    return teacher, nd.models.MLP(64, [8], 10), nd.data.Digits(n_train=100)


@pytest.mark.parametrize("method", METHODS)
def test_one_epoch_on_digits_finishes_with_finite_metrics(method):
    teacher, student, data = _setting(method)
    run = nd.fit(method, student=student, teacher=teacher, data=data, max_epochs=1)
    assert run.status == "finished"
    metrics = run.metrics
    assert 0.0 <= metrics["test/student_acc"] <= 1.0
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith(("train/", "test/")))
    if method != "kd.student_only" or teacher is not None:  # every KD run draws its efficiency view
        (event,) = run.log.of("efficiency")
        assert "student" in [row[0] for row in event["rows"]]


@pytest.mark.parametrize("method", METHODS)
def test_out_of_range_hparam_is_refused_before_training(method, runs_root):
    teacher, student, data = _setting(method)
    values, message = BAD[method]
    with pytest.raises(nd.ConfigError, match=message):
        nd.fit(method, student=student, teacher=teacher, data=data, max_epochs=1, **values)
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_fitnet_names_the_available_layers_of_a_bad_hint_layer(runs_root):
    teacher, student, data = _setting("kd.fitnet")
    with pytest.raises(nd.ConfigError, match=r"the teacher has no layer 'conv1'; its layers are \['net', 'net\.0', 'net\.1'"):
        nd.fit("kd.fitnet", student=student, teacher=teacher, data=data, teacher_layer="conv1")
    with pytest.raises(nd.ConfigError, match=r"the student has no layer 'net\.7'.*'penultimate'\]"):
        nd.fit("kd.fitnet", student=student, teacher=teacher, data=data, student_layer="net.7")
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_fitnet_stage_one_trains_only_up_to_the_guided_layer():
    teacher, student, data = _setting("kd.fitnet")
    module = nd.build("kd.fitnet", student, teacher, student_layer="net.1", teacher_layer="net.3", hint_epochs=5)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    module.check_compatibility(batch, 10)
    terms = module.loss_terms(batch)
    assert set(terms) == {"loss", "hint"}
    terms["loss"].backward()
    assert student.net[0].weight.grad.abs().sum() > 0 and module.regressor.map.weight.grad.abs().sum() > 0
    assert student.net[2].weight.grad is None  # the layer after the guided one waits for stage 2


def test_quantized_student_is_evaluated_quantised_and_keeps_full_precision_weights():
    teacher, student, data = _setting("kd.quantized")
    run = nd.fit("kd.quantized", student=student, teacher=teacher, data=data, max_epochs=2, bits=2, bucket_size=64)
    module = run.module
    w = module.student.net[0].weight.detach()
    assert not torch.allclose(w, quantize(w, 2, 64))  # the stored weights are not on the 2-bit grid
    x, y = data.dataset("test").tensors
    with torch.no_grad():
        acc = (module.quantized_student()(x).argmax(-1) == y).float().mean().item()
    assert acc == pytest.approx(run.metrics["test/student_acc"], abs=1e-6)
    n = sum(p.numel() for p in student.parameters())
    assert run.metrics["test/size_bits"] == sum(p.numel() * 2 + math.ceil(p.numel() / 64) * 64 for p in student.parameters())
    assert run.metrics["test/compression"] == pytest.approx(32 * n / run.metrics["test/size_bits"])


def test_hierarchical_self_logs_each_exit_without_a_teacher():
    _, student, data = _setting("kd.hierarchical_self")
    run = nd.fit("kd.hierarchical_self", student=student, data=data, max_epochs=1, exits="net.1, net.3")
    assert 0.0 <= run.metrics["val/exit1_acc"] <= 1.0 and 0.0 <= run.metrics["val/exit2_acc"] <= 1.0


def test_moe_teacher_initialises_the_student_from_the_non_expert_weights():
    teacher = nd.zoo.teacher("digits-moe")
    student = nd.models.MLP(64, [64], 10)
    nd.build("kd.moe_teacher", student, teacher, init_from_teacher=True)
    assert torch.equal(student.net[0].weight, teacher.stem.weight) and torch.equal(student.net[2].bias, teacher.head.bias)
    with pytest.raises(nd.ConfigError, match=r"stem and head \[\(64, 64\), \(10, 64\)\], got \[\(8, 64\), \(10, 8\)\]"):
        nd.build("kd.moe_teacher", nd.models.MLP(64, [8], 10), teacher, init_from_teacher=True)
    with pytest.raises(nd.ConfigError, match="needs a mixture-of-experts teacher"):
        nd.build("kd.moe_teacher", nd.models.MLP(64, [8], 10), nd.zoo.teacher("digits-mlp"), init_from_teacher=True)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_example_config_runs_from_the_cli(method, run_example_config, example_hparams):
    file = f"kd_{method.split('.')[1]}_digits.yaml"
    info = run_example_config(file, method, data={"n_train": 100})
    assert example_hparams(file).items() <= info["hparams"].items()


def test_dkd_warmup_ramps_from_the_first_epoch():
    teacher, student, _ = _setting("kd.dkd")
    module = nd.build("kd.dkd", student, teacher, warmup=4)
    assert module.current_epoch == 0 and module.warmup_factor() == 0.25
    assert nd.build("kd.dkd", student, teacher, warmup=0).warmup_factor() == 1.0
