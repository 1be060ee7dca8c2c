"""score.eg4d: the pairs are exact teacher ODE endpoints (the teacher's DDIM from the seeded noise, close to a
fine ODE solve), the one-step fit reaches them on the exact mixture, and the refusals before training."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.eg4d import ExplicitGenerationFit
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.samplers import ddim, heun
from nbdistill.families.score.schedule import CosineVP
from nbdistill.models import MLPDenoiser

F64 = torch.float64


def _module(**hparams):
    teacher = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), CosineVP())
    return ExplicitGenerationFit(MLPDenoiser(2, hidden=32, depth=2), teacher, **hparams)


def test_pairs_are_the_teachers_ode_endpoints_of_the_seeded_noise():
    module = _module(pairs=64, teacher_steps=32, pair_seed=3)
    z, x = module.teacher_pairs((2,), F64)
    torch.testing.assert_close(z, torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=F64), rtol=0, atol=0)
    schedule = module.noise
    torch.testing.assert_close(x, ddim(module.teacher, schedule, z, schedule.timesteps(32, dtype=F64)), rtol=0, atol=1e-12)
    # and they are the ODE's endpoints: a 256-step Heun solve of the exact probability-flow ODE agrees
    fine = heun(module.teacher, schedule, z, schedule.timesteps(256, dtype=F64))
    assert (x - fine).norm(dim=1).max() < 0.1, (x - fine).norm(dim=1).max()
    # the same seed gives the same pairs (a resumed run fits the same set)
    torch.testing.assert_close(module.teacher_pairs((2,), F64)[1], x, rtol=0, atol=0)


def test_the_one_step_fit_reaches_the_pairs():
    torch.manual_seed(0)
    module = _module(pairs=64, teacher_steps=16, lr=1e-2)
    optimiser = torch.optim.Adam(module.student.parameters(), lr=module.lr)
    batch = (torch.zeros(64, 2), None)
    first = module.loss_terms(batch)["loss"].item()
    for _ in range(200):
        optimiser.zero_grad()
        module.loss_terms(batch)["loss"].backward()
        optimiser.step()
    z, x = module._pairs
    with torch.no_grad():
        fitted = (module.generate(z) - x).norm(dim=1)
    spread = (x - x.mean(0)).norm(dim=1).mean()  # ~2: the ring's radius
    assert fitted.mean() < 0.25 * spread, (first, fitted.mean(), spread)


def test_a_teacher_is_required():
    with pytest.raises(ConfigError, match="teacher"):
        ExplicitGenerationFit(MLPDenoiser(2, hidden=16, depth=2), None)
