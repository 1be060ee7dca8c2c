"""score.pso: the DPO loss on a hand case (log 2 at equal log-ratios, the gradient's signs), the denoising
error it uses, tuning that moves a generator's samples into the target region, and the refusals."""

from __future__ import annotations

import math

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.eg4d import ExplicitGenerationFit
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.pso import denoising_error, pso_loss
from nbdistill.families.score.pso import PairwiseSampleOptimization, in_region
from nbdistill.families.score.schedule import CosineVP
from nbdistill.models import MLPDenoiser

F64 = torch.float64


def test_equal_log_ratios_give_log_2_and_a_hand_margin():
    e = torch.tensor([0.3, 1.2], dtype=F64)
    terms = pso_loss(e, e - 0.1, e + 0.5, e + 0.4, beta=7.0)  # both members' ratios are +0.1
    torch.testing.assert_close(terms["loss"], torch.tensor(math.log(2), dtype=F64))
    # margin -beta [(0.2 - 0.4) - (0.5 - 0.1)] = 2 * 0.6 = 1.2: loss = log(1 + e^-1.2)
    hand = pso_loss(*(torch.tensor([v], dtype=F64) for v in (0.2, 0.4, 0.5, 0.1)), beta=2.0)
    torch.testing.assert_close(hand["loss"], torch.tensor(math.log1p(math.exp(-1.2)), dtype=F64))
    assert hand["pair_accuracy"] == 1.0


def test_the_gradient_raises_the_preferred_samples_likelihood():
    err_w = torch.tensor([0.5], dtype=F64, requires_grad=True)
    err_l = torch.tensor([0.5], dtype=F64, requires_grad=True)
    pso_loss(err_w, torch.tensor([0.4], dtype=F64), err_l, torch.tensor([0.6], dtype=F64), beta=3.0)["loss"].backward()
    assert err_w.grad > 0  # descending lowers the target's error: raises its likelihood
    assert err_l.grad < 0  # and raises the own sample's error
    torch.testing.assert_close(err_w.grad, -err_l.grad)


def test_the_denoising_error_of_the_exact_denoiser_is_tweedies_residual():
    schedule = CosineVP()
    teacher = ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), schedule)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(16, 2, generator=g, dtype=F64), torch.randn(16, 2, generator=g, dtype=F64)
    t = torch.full((16,), 0.4, dtype=F64)
    x_t = schedule.alpha(t)[:, None] * x0 + schedule.sigma(t)[:, None] * eps
    torch.testing.assert_close(denoising_error(teacher, x0, t, eps, schedule), ((x0 - teacher(x_t, t)) ** 2).sum(1))


def test_regions():
    x = torch.tensor([[1.0, -2.0], [-1.0, 3.0]])
    assert in_region(x, "right").tolist() == [True, False] and in_region(x, "upper").tolist() == [False, True]
    assert in_region(x, "all").all()


def test_tuning_moves_the_generators_samples_into_the_target_region():
    """A ring-data generator (fitted for 150 steps) tuned by PSO toward the right half puts more samples there."""
    torch.manual_seed(0)
    mixture = GaussianMixture.ring(k=4, radius=2.0, std=0.2)
    module = PairwiseSampleOptimization(
        MLPDenoiser(2, hidden=32, depth=2), ExactDenoiser(mixture), target_region="right", beta=0.5
    )
    data = mixture.sample(512, torch.Generator().manual_seed(1)).float()
    fit = ExplicitGenerationFit(module.student, ExactDenoiser(mixture), pairs=128, teacher_steps=16)  # the distilled start
    fitting = torch.optim.Adam(module.student.parameters(), lr=1e-2)
    for _ in range(150):
        fitting.zero_grad()
        fit.loss_terms((data[:64], None))["loss"].backward()
        fitting.step()
    module.reference.load_state_dict(module.student.state_dict())
    before = module.loss_terms((data[:256], None))["target_fraction"].item()
    optimiser = torch.optim.Adam(module.student.parameters(), lr=1e-2)
    for _ in range(150):
        batch = data[torch.randint(512, (128,))]
        optimiser.zero_grad()
        module.loss_terms((batch, None))["loss"].backward()
        optimiser.step()
    after = module.loss_terms((data[:256], None))["target_fraction"].item()
    assert after > before + 0.1, (before, after)


def test_init_from_a_teacher_of_another_architecture_is_refused():
    with pytest.raises(ConfigError, match="cannot copy"):
        PairwiseSampleOptimization(MLPDenoiser(2, hidden=16, depth=2), MLPDenoiser(2, hidden=32, depth=2), init="teacher")
