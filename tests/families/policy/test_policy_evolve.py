"""EVOLvE's ideas: the guide's alignment (training vs evaluation), the demonstration context, the regret fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.policy.algorithms import BONUS_CAP, make_algorithm
from nbdistill.families.policy.evolve_demos import DemoAD, DemoPrefixed, demo_context
from nbdistill.families.policy.evolve_fit import fit_regret
from nbdistill.families.policy.evolve_views import draw_suite_grid, suite_grid
from nbdistill.families.policy.rollout import Trajectory, run_algorithm, run_model


class Scripted(nn.Module):
    """Plays a fixed action sequence (the logits of ``script[:, t]`` at context ``t``) and records its ``extra``."""

    def __init__(self, script: torch.Tensor):
        super().__init__()
        self.script, self.seen = script, []
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, actions, rewards, obs=None, extra=None):
        t = actions.shape[1]
        self.seen.append(extra.clone())
        logits = torch.zeros(actions.shape[0], t + 1, 5)
        logits[:, -1] = nn.functional.one_hot(self.script[:, t], 5).float()
        return logits


def test_guide_statistics_are_aligned_identically_at_training_and_evaluation():
    data = nd.data.BernoulliBandits(arms=5, horizon=8, n_tasks=20)
    env = data.make_env(data.tasks("train")[:6])
    # training: a teacher's trajectory with the guide's statistics recorded, [N, T + 1, 15] (what student_logits_on reads)
    trained = run_algorithm(make_algorithm("ucb"), env, 8, torch.Generator().manual_seed(0), seed=3, guide=make_algorithm("ucb"))
    assert trained.guides.shape == (6, 9, 15)
    # evaluation: a model replaying the same actions online, reading the guide run beside it
    model = Scripted(trained.actions)
    played = run_model(model, env, 8, torch.Generator().manual_seed(0), seed=3, guide=make_algorithm("ucb"))
    torch.testing.assert_close(played.actions, trained.actions, rtol=0, atol=0)
    torch.testing.assert_close(played.rewards, trained.rewards, rtol=0, atol=0)
    for t, extra in enumerate(model.seen):  # at context t the model reads positions 0..t: the statistics after 0..t transitions
        torch.testing.assert_close(extra, trained.guides[:, : t + 1], rtol=0, atol=1e-6)
    # by hand: position j holds the pulls of the first j actions / (j + 1); position 0 the capped infinite bonus
    stats = trained.guides.reshape(6, 9, 5, 3)
    for j in range(9):
        counts = nn.functional.one_hot(trained.actions[:, :j], 5).sum(1).double() if j else torch.zeros(6, 5, dtype=torch.float64)
        torch.testing.assert_close(stats[:, j, :, 1].double(), counts / (j + 1), rtol=0, atol=1e-6)
    torch.testing.assert_close(stats[:, 0, :, 2], torch.full((6, 5), BONUS_CAP), rtol=0, atol=0)


def test_demo_context_layout_on_a_hand_case():
    demo = Trajectory(
        torch.tensor([[0, 1], [2, 3], [4, 4]]), torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), torch.zeros(3, 2)
    )
    history = Trajectory(torch.tensor([[1], [2], [3]]), torch.tensor([[0.5], [0.25], [0.0]]), torch.zeros(3, 1))
    actions, rewards = demo_context(demo, history)
    # task i reads the demonstration played on task i + 1 (mod 3), then its own history
    assert actions.tolist() == [[2, 3, 1], [4, 4, 2], [0, 1, 3]]
    torch.testing.assert_close(rewards, torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.25], [0.0, 1.0, 0.0]]), rtol=0, atol=0)


def test_demo_prefixed_student_reads_the_demonstration_first():
    torch.manual_seed(0)
    student = nd.models.ICTransformer(num_actions=5, max_context=12, width=8, depth=1)
    demo_a, demo_r = torch.randint(5, (3, 4)), torch.rand(3, 4)
    own_a, own_r = torch.randint(5, (3, 5)), torch.rand(3, 5)
    prefixed = DemoPrefixed(student, demo_a, demo_r)(own_a, own_r)
    whole = student(torch.cat([demo_a, own_a], 1), torch.cat([demo_r, own_r], 1))
    assert prefixed.shape == (3, 6, 5)
    torch.testing.assert_close(prefixed, whole[:, 4:], rtol=0, atol=1e-6)


def test_demo_ad_refuses_a_student_too_short_for_demo_and_history_and_a_guide():
    data = nd.data.BernoulliBandits(arms=5, horizon=10, n_tasks=20)
    module = DemoAD(student=nd.models.ICTransformer(num_actions=5, max_context=10, width=8, depth=1))
    with pytest.raises(ConfigError, match="max_context=20"):
        module.check_data(data)
    guided = DemoAD(student=nd.models.ICTransformer(num_actions=5, max_context=20, width=8, depth=1), guide="ucb")
    with pytest.raises(ConfigError, match="guide"):
        guided.check_data(data)


def test_fit_recovers_the_form_exactly_on_a_noiseless_curve():
    t = np.arange(1, 301, dtype=np.float64)
    curve = 2.0 * np.log(t) ** 1.5 / 0.2 + 0.05 * t + 1.0
    fit = fit_regret(curve, gap=0.2)
    assert fit.alpha == pytest.approx(1.5, abs=1e-9)
    assert (fit.lambda_1, fit.beta, fit.lambda_2) == pytest.approx((2.0, 0.05, 1.0), rel=1e-6)
    np.testing.assert_allclose(fit(t), curve, rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_verdicts_on_noisy_log_and_linear_curves(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(1, 201, dtype=np.float64)
    logarithmic = 4.0 * np.log(t) / 0.2 + rng.normal(0, 0.5, t.size)
    linear = 0.15 * t + rng.normal(0, 0.5, t.size)
    assert fit_regret(logarithmic, gap=0.2).verdict == "sub-linear"
    fit = fit_regret(linear, gap=0.2)
    assert fit.verdict == "linear"
    assert fit.beta == pytest.approx(0.15, abs=0.01)


def test_fit_refuses_too_short_a_curve():
    with pytest.raises(ValueError, match="at least 4"):
        fit_regret([0.0, 1.0])


def test_suite_grid_orders_random_last_and_draws():
    grid = suite_grid(players=("random", "ucb"), suites=("Bernoulli gap 0.5 (easy)",), horizon=20, n_tasks=30)
    (random_regret,), (ucb_regret,) = grid["regret"]
    assert ucb_regret < random_regret
    assert grid["win_rate"] == [0.0, 1.0]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_suite_grid(ax, grid)
    assert len(ax.texts) == 2
    plt.close(fig)
