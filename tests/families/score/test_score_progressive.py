"""score.progressive: the target's defining property, the halving rounds, and the refusals before training."""

from __future__ import annotations

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.score import losses
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.progressive import ProgressiveDistillation
from nbdistill.families.score.samplers import ddim_step
from nbdistill.families.score.schedule import CosineVP, LinearVP
from nbdistill.models import MLPDenoiser


class Constant(torch.nn.Module):
    """A denoiser that returns a given x0-prediction whatever its input."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0

    def forward(self, x_t, t):
        return self.x0


@pytest.mark.parametrize("schedule", [CosineVP(), LinearVP()])
def test_one_student_step_on_the_target_reproduces_two_teacher_steps(schedule):
    """Salimans & Ho Alg. 2: with x̂ = x̃, one DDIM step z_t -> z_t'' lands on the teacher's two steps (float64)."""
    g = torch.Generator().manual_seed(0)
    teacher = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), schedule)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.8 + 0.15
    t2 = t - 0.1
    t1 = 0.5 * (t + t2)
    z_t = schedule.alpha(t)[:, None] * x + schedule.sigma(t)[:, None] * torch.randn(64, 2, generator=g, dtype=torch.float64)
    z_t2 = ddim_step(teacher, schedule, ddim_step(teacher, schedule, z_t, t, t1), t1, t2)
    target = losses.progressive_target(z_t, z_t2, schedule.alpha(t), schedule.sigma(t), schedule.alpha(t2), schedule.sigma(t2))
    one_step = ddim_step(Constant(target), schedule, z_t, t, t2)
    torch.testing.assert_close(one_step, z_t2, rtol=0, atol=1e-12)
    # and the teacher's own x0-prediction is not the target (two steps differ from one teacher step)
    assert (ddim_step(teacher, schedule, z_t, t, t2) - z_t2).abs().max() > 1e-6


def test_loss_weight_is_the_truncated_snr():
    alpha, sigma = torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(losses.truncated_snr_weight(alpha, sigma), torch.tensor([81.0, 1.0, 1.0]))
    terms = losses.progressive_loss(torch.zeros(3, 2), torch.ones(3, 2), torch.tensor([2.0, 1.0, 1.0]))
    torch.testing.assert_close(terms["loss"], torch.tensor(4.0 / 3))
    torch.testing.assert_close(terms["x0_mse"], torch.tensor(1.0))


def _module(**hparams):
    mixture = GaussianMixture.ring(k=4, radius=2.0, std=0.3)
    return ProgressiveDistillation(MLPDenoiser(2, hidden=16, depth=2), teacher=ExactDenoiser(mixture), **hparams)


def test_steps_halve_after_each_round_down_to_the_target():
    module = _module(teacher_steps=16, steps=2, round_steps=3)
    assert module.student_steps == 8 and module.current_teacher() is module.teacher
    seen = []
    for _ in range(12):
        module.on_train_batch_end(None, None, 0)
        seen.append(module.student_steps)
    assert seen == [8, 8, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2]
    assert module.rounds_done == 2
    teacher = module.current_teacher()
    assert teacher is not module.teacher and not any(p.requires_grad for p in teacher.parameters())
    assert teacher not in list(module.modules())  # neither optimised nor checkpointed


def test_loss_terms_train_the_student_only():
    module = _module(teacher_steps=8, steps=1)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    terms = module.loss_terms((x, torch.zeros(32, dtype=torch.long)))
    assert terms["loss"].isfinite() and terms["loss"].requires_grad
    terms["loss"].backward()
    assert all(p.grad is not None for p in module.student.parameters())


@pytest.mark.parametrize("steps", [0, 65])
def test_a_step_count_of_0_or_above_the_teachers_is_refused_before_training(steps):
    with pytest.raises(ConfigError, match="steps"):
        nd.fit(
            "score.progressive",
            student=MLPDenoiser(2, hidden=16, depth=2),
            teacher=ExactDenoiser(GaussianMixture.ring(k=4)),
            data=nd.data.Mixture2D(n_samples=100, batch_size=50),
            teacher_steps=64,
            steps=steps,
            max_epochs=1,
        )


def test_a_student_whose_output_shape_differs_from_the_data_is_refused():
    module = ProgressiveDistillation(MLPDenoiser(3, hidden=8, depth=1), teacher=ExactDenoiser(GaussianMixture.ring(k=4)))
    x = torch.randn(4, 3)

    class Project(torch.nn.Module):  # a student that returns 2-D points for 3-D data
        def forward(self, x_t, t):
            return x_t[:, :2]

    module.student = Project()
    with pytest.raises(ConfigError, match=r"shape \[2\] but the data's points have shape \[3\]"):
        module.evaluation.check_batch(module, (x, torch.zeros(4)), None)


def test_validation_logs_sample_metrics_with_the_exact_density_and_the_samples(runs_root):
    """The evaluation samples with the student's current step count and measures it against the val
    points and the data module's exact density; the samples, data and density are written for the view."""
    data = nd.data.Mixture2D(n_samples=200, batch_size=50)
    run = nd.fit(
        "score.progressive",
        student=MLPDenoiser(2, hidden=16, depth=2),
        teacher=ExactDenoiser(data.density),
        data=data,
        teacher_steps=8,
        steps=2,
        round_steps=1000,
        eval_samples=64,
        max_epochs=1,
    )
    for name in ("energy_distance", "sliced_wasserstein", "mmd", "mode_coverage", "log_likelihood"):
        assert name in {k.split("/", 1)[1] for k in run.metrics if k.startswith("val/")}, name
    assert run.metrics["val/sampling_steps"] == 4  # ceil(8 / 2): still in the first round
    names = {e.get("name") for e in run.log.events}
    assert {"samples/student", "samples/data", "density/data"} <= names


def test_the_round_and_its_teacher_survive_a_checkpoint():
    module = _module(teacher_steps=16, steps=1, round_steps=1)
    module.on_train_batch_end(None, None, 0)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored = _module(teacher_steps=16, steps=1, round_steps=1)
    restored.student.load_state_dict(module.student.state_dict())
    restored.on_load_checkpoint(checkpoint)
    assert (restored.student_steps, restored.rounds_done) == (4, 1)
    x, t = torch.randn(5, 2), torch.full((5,), 0.5)
    torch.testing.assert_close(restored.current_teacher()(x, t), module.current_teacher()(x, t))


def test_init_teacher_starts_the_student_from_the_teachers_weights():
    teacher = MLPDenoiser(2, hidden=8, depth=2)
    module = ProgressiveDistillation(student=MLPDenoiser(2, hidden=8, depth=2), teacher=teacher, init="teacher")
    for (name, a), b in zip(module.student.state_dict().items(), teacher.state_dict().values()):
        assert torch.equal(a, b), name  # copies of the same tensors
    assert all(p.requires_grad for p in module.student.parameters())  # the teacher is frozen, the student is not
    given = ProgressiveDistillation(student=MLPDenoiser(2, hidden=8, depth=2), teacher=teacher)
    assert not torch.equal(given.student.state_dict()["net.0.weight"], teacher.state_dict()["net.0.weight"])


def test_init_teacher_reads_a_zoo_teachers_network():
    zoo = nd.zoo.ZooTeacher("moons-denoiser")
    module = ProgressiveDistillation(student=MLPDenoiser(2, hidden=128, depth=4, time_embedding=32), teacher=zoo, init="teacher")
    x, t = torch.randn(5, 2), torch.full((5,), 0.3)
    torch.testing.assert_close(module.student(x, t), zoo(x, t), rtol=0, atol=0)  # the same weights, the same kernels


@pytest.mark.parametrize("teacher", [MLPDenoiser(2, hidden=16, depth=2), ExactDenoiser(GaussianMixture.ring(k=4)), None])
def test_init_teacher_refuses_a_teacher_it_cannot_copy(teacher):
    with pytest.raises(ConfigError, match="init='teacher'"):
        ProgressiveDistillation(student=MLPDenoiser(2, hidden=8, depth=2), teacher=teacher, init="teacher")
