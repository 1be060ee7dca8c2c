"""score.tuned_sampler: the monotone time parametrisation, its uniform start (plain DDIM), tuning that lowers
the distance to the teacher's many-step samples on the exact mixture, and the refusals before training."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.tuned_sampler import logits_from_times, paired_endpoint_loss, schedule_times
from nbdistill.families.score.samplers import ddim, sample
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.tuned_sampler import TunedSampler
from nbdistill.models import MLPDenoiser

F64 = torch.float64


def test_times_strictly_decrease_from_t_max_to_t_min_for_any_logits():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 17):
        for scale in (0.1, 3.0, 20.0):
            times = schedule_times(scale * torch.randn(n, generator=g, dtype=F64), 0.999, 0.001)
            assert times.shape == (n + 1,)
            assert times[0] == 0.999 and times[-1] == 0.001  # the end points exactly
            assert (times.diff() < 0).all(), times


def test_uniform_logits_are_plain_ddim_and_times_round_trip():
    schedule = CosineVP()
    torch.testing.assert_close(
        schedule_times(torch.zeros(4, dtype=F64), schedule.t_max, schedule.t_min), schedule.timesteps(4, dtype=F64)
    )
    given = torch.tensor([0.999, 0.7, 0.2, 0.05, 0.001], dtype=F64)
    torch.testing.assert_close(schedule_times(logits_from_times(given), 0.999, 0.001), given, rtol=0, atol=1e-12)
    # the module at its start samples exactly as the teacher's uniform DDIM
    teacher = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), schedule)
    module = TunedSampler(MLPDenoiser(2, hidden=16, depth=2), teacher, steps=3, teacher_steps=8)
    ours = module.draw_samples(64, torch.Generator().manual_seed(1), (2,), F64)
    plain = sample(teacher, schedule, 64, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(ours, plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize("steps", [2, 4])
def test_tuning_the_times_lowers_the_distance_to_the_teachers_many_step_samples(steps):
    """On the exact mixture (float64), 25 Adam steps on the logits cut the paired endpoint distance by > 15 %."""
    schedule = CosineVP()
    teacher = ExactDenoiser(GaussianMixture.ring(k=8, radius=2.0, std=0.2), schedule)
    z = torch.randn(128, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    reference = ddim(teacher, schedule, z, schedule.timesteps(16, dtype=F64))
    logits = torch.zeros(steps, dtype=F64, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)

    def distance():
        return paired_endpoint_loss(ddim(teacher, schedule, z, schedule_times(logits, schedule.t_max, schedule.t_min)), reference)

    before = distance().item()
    for _ in range(25):
        optimiser.zero_grad()
        distance().backward()
        optimiser.step()
    after = distance().item()
    assert after < 0.85 * before, (before, after)


def test_module_loss_reaches_the_logits_and_leaves_the_student_frozen():
    teacher = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3))
    module = TunedSampler(MLPDenoiser(2, hidden=16, depth=2), teacher, steps=3, teacher_steps=8)
    terms = module.loss_terms((torch.randn(32, 2), None))
    terms["loss"].backward()
    assert module.schedule_logits.grad is not None and module.schedule_logits.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in module.student.parameters())
    assert [n for n, p in module.named_parameters() if p.requires_grad] == ["schedule_logits"]


def _module(**hparams):
    return TunedSampler(MLPDenoiser(2, hidden=16, depth=2), ExactDenoiser(GaussianMixture.ring(k=4)), **hparams)


@pytest.mark.parametrize(
    "hparams, words",
    [
        ({"steps": 3, "times": "0.999, 0.2, 0.5, 0.001"}, "strictly decrease"),  # a schedule that is not decreasing
        ({"steps": 2, "times": "0.999, 0.5, 0.5"}, "strictly decrease"),
        ({"steps": 2, "times": "0.999, 0.0010001, 0.001"}, "gaps must each exceed"),
        ({"steps": 2, "times": "0.999, 0.001"}, r"steps \+ 1"),
        ({"steps": 2, "times": "0.9, 0.5, 0.001"}, "t_max"),
        ({"steps": 2, "times": "0.999, half, 0.001"}, "comma-separated numbers"),
        ({"steps": 8, "teacher_steps": 8}, "fewer than teacher_steps"),
    ],
)
def test_bad_schedules_are_refused_before_training(hparams, words):
    with pytest.raises(ConfigError, match=words):
        _module(**hparams)


def test_explicit_times_start_the_schedule():
    module = _module(steps=2, teacher_steps=8, times="0.999, 0.3, 0.001")
    torch.testing.assert_close(module.tuned_times().detach(), torch.tensor([0.999, 0.3, 0.001], dtype=F64), rtol=0, atol=1e-6)


def test_a_teacher_is_required():
    with pytest.raises(ConfigError, match="teacher"):
        TunedSampler(MLPDenoiser(2, hidden=16, depth=2), None)
