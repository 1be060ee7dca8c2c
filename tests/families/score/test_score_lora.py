"""score.lora: the LoRA layer's math and initialisation, the trainable-parameter counts, the merged export,
the student built from the teacher (the given one ignored), both objectives, and the refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.lora import LoRADistillation
from nbdistill.families.score.lora_layers import LoRALinear, add_lora, lora_layers, merge_lora, trainable_parameters
from nbdistill.models import MLPDenoiser

F64 = torch.float64


def test_the_lora_layer_is_the_base_plus_the_scaled_low_rank_update():
    """h = W₀x + b + (α/r)·B A x, checked against the explicit matrices (float64)."""
    torch.manual_seed(0)
    base = nn.Linear(5, 3).double()
    layer = LoRALinear(base, rank=2, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 5, dtype=F64)
    expected = x @ base.weight.T + base.bias + 3.0 * x @ (layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    assert layer.lora_A.shape == (2, 5) and layer.lora_B.shape == (3, 2)


def test_the_adapted_network_starts_as_the_teacher_and_only_the_adapters_train():
    teacher = MLPDenoiser(2, hidden=32, depth=3)
    module = LoRADistillation(MLPDenoiser(2, hidden=8, depth=1), teacher=teacher, rank=3)
    x, t = torch.randn(16, 2), torch.rand(16)
    torch.testing.assert_close(module.student(x, t), teacher(x, t), rtol=0, atol=0)  # B = 0: exactly the teacher
    assert all(torch.count_nonzero(layer.lora_B) == 0 for layer in lora_layers(module.student))
    trainable = {n for n, p in module.student.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert module.student is not teacher and not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("rank", [1, 4, 16])
def test_the_trainable_parameters_are_rank_times_in_plus_out_per_linear_layer(rank):
    """The shipped teacher's network MLPDenoiser(2, 128, 4, time_embedding=32): Linear(34, 128), 3 × Linear(128, 128), Linear(128, 2)."""
    zoo = nd.zoo.ZooTeacher("moons-denoiser")
    module = LoRADistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=zoo, rank=rank)
    expected = rank * ((34 + 128) + 3 * (128 + 128) + (128 + 2))
    assert trainable_parameters(module.student) == expected
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == expected  # what Adam optimises
    full = sum(p.numel() for p in zoo.net.parameters())
    assert expected < full  # 4 240 at rank 4 against 54 k weights


def test_the_merged_export_gives_the_adapter_models_outputs():
    torch.manual_seed(1)
    model = add_lora(MLPDenoiser(2, hidden=16, depth=2).double(), rank=2, alpha=5.0)
    with torch.no_grad():
        for layer in lora_layers(model):
            layer.lora_B.normal_()  # a trained-looking adapter, not the zero start
    merged = merge_lora(model)
    assert not lora_layers(merged) and all(type(m) is nn.Linear for m in merged.net if isinstance(m, nn.Linear | LoRALinear))
    x, t = torch.randn(32, 2, dtype=F64), torch.rand(32, dtype=F64)
    torch.testing.assert_close(merged(x, t), model(x, t), rtol=1e-10, atol=1e-12)
    assert (merged(x, t) - MLPDenoiser(2, hidden=16, depth=2).double()(x, t)).abs().max() > 1e-3


def test_the_modules_merged_student_has_the_teachers_architecture():
    zoo = nd.zoo.ZooTeacher("moons-denoiser")
    module = LoRADistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=zoo)
    merged = module.merged_student()
    assert merged.state_dict().keys() == zoo.net.state_dict().keys()
    x, t = torch.randn(8, 2), torch.rand(8)
    torch.testing.assert_close(merged(x, t), module.student(x, t), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("objective", ["progressive", "consistency"])
def test_both_objectives_train_the_adapters_only(objective):
    teacher = MLPDenoiser(2, hidden=16, depth=2)
    module = LoRADistillation(MLPDenoiser(2, hidden=8, depth=1), teacher=teacher, objective=objective, teacher_steps=4)
    terms = module.loss_terms((torch.randn(16, 2), None))
    terms["loss"].backward()
    for layer in lora_layers(module.student):
        assert layer.lora_B.grad is not None and layer.base.weight.grad is None
    assert hasattr(module, "target") == (objective == "consistency")  # the EMA target network only where used
    samples = module.draw_samples(5, torch.Generator().manual_seed(0), (2,), torch.float32)
    assert samples.shape == (5, 2) and torch.isfinite(samples).all()


def test_the_progressive_objective_halves_the_steps_of_the_adapted_student():
    module = LoRADistillation(
        MLPDenoiser(2, hidden=8, depth=1), teacher=MLPDenoiser(2, hidden=16, depth=2), teacher_steps=8, round_steps=1
    )
    assert module.sampling_steps == 4
    module.on_train_batch_end(None, None, 0)
    assert module.sampling_steps == 2 and lora_layers(module.current_teacher())


def test_a_teacher_without_linear_layers_or_no_teacher_is_refused():
    with pytest.raises(ConfigError, match="nn.Linear"):
        LoRADistillation(MLPDenoiser(2, hidden=8, depth=1), teacher=ExactDenoiser(GaussianMixture.ring(k=4)))
    with pytest.raises(ConfigError, match="teacher"):
        LoRADistillation(MLPDenoiser(2, hidden=8, depth=1))


def test_the_adapted_round_teacher_survives_a_checkpoint():
    teacher = MLPDenoiser(2, hidden=16, depth=2)
    module = LoRADistillation(MLPDenoiser(2, hidden=8, depth=1), teacher=teacher, teacher_steps=8, round_steps=1)
    with torch.no_grad():
        for layer in lora_layers(module.student):
            layer.lora_B.normal_()
    module.on_train_batch_end(None, None, 0)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    restored = LoRADistillation(MLPDenoiser(2, hidden=8, depth=1), teacher=teacher, teacher_steps=8, round_steps=1)
    restored.load_state_dict(checkpoint["state_dict"])
    restored.on_load_checkpoint(checkpoint)
    x, t = torch.randn(5, 2), torch.rand(5)
    assert restored.sampling_steps == 2
    torch.testing.assert_close(restored.current_teacher()(x, t), module.current_teacher()(x, t), rtol=0, atol=0)
    torch.testing.assert_close(restored.student(x, t), module.student(x, t), rtol=0, atol=0)


def test_the_run_gives_back_the_merged_network_as_its_student(tmp_path, monkeypatch):
    """run.student(net of the teacher's architecture) loads the merged weights W0 + (α/r)·B A of the last checkpoint."""
    monkeypatch.setenv("NBDISTILL_RUNS", str(tmp_path))
    teacher = nd.zoo.teacher("moons-denoiser")
    run = nd.fit(
        "score.lora",
        teacher=teacher,
        student=MLPDenoiser(2, hidden=16, depth=2),
        data=nd.data.TwoMoons(n_samples=200, batch_size=50),
        max_epochs=1,
        teacher_steps=4,
        eval_samples=20,
        lr=0.05,
    )
    assert run.status == "finished"
    state = run.load_checkpoint()["state_dict"]
    adapted = add_lora(MLPDenoiser(2, hidden=128, depth=4, time_embedding=32), rank=4, alpha=4.0)
    adapted.load_state_dict({k[len("student.") :]: v for k, v in state.items() if k.startswith("student.")})
    assert any(layer.lora_B.abs().sum() > 0 for layer in lora_layers(adapted)), "the adapters trained"
    student = run.student(MLPDenoiser(2, hidden=128, depth=4, time_embedding=32))
    x, t = torch.randn(16, 2), torch.rand(16)
    with torch.no_grad():
        torch.testing.assert_close(student(x, t), adapted(x, t), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(student(x, t), teacher(x, t), atol=1e-6), "not the untouched teacher"
