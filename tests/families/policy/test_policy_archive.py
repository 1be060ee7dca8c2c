"""policy.archive (DCG-MAP-Elites): the similarity, the archive, the critic's target, actor injection, a short run."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.views import VIEWS
from nbdistill.families.policy.archive import ArchiveDistillation
from nbdistill.families.policy.archive_dcg import DescriptorCritic, act, critic_loss, similarity, td3_target
from nbdistill.families.policy.archive_task import PointReach, play
from nbdistill.families.policy.map_elites import BatchedPolicy, GridArchive, isoline_variation

F64 = {"dtype": torch.float64}


def actor(hidden=(8,)) -> nd.models.MLP:
    return nd.models.MLP(in_features=5, hidden=list(hidden), out_features=2)


# -- the similarity S(d, d') = exp(-|d - d'| / L) -------------------------------------------------
def test_similarity_is_one_at_d_equal_d_prime_and_decreases_with_the_distance():
    d = torch.tensor([[0.2, -0.4]], **F64)
    torch.testing.assert_close(similarity(d, d, 0.1), torch.ones(1, **F64), rtol=0, atol=1e-15)
    # a 3-4-5 triangle: |d - d'| = 0.5, S = exp(-0.5 / 0.1) = exp(-5)
    torch.testing.assert_close(
        similarity(torch.zeros(1, 2, **F64), torch.tensor([[0.3, 0.4]], **F64), 0.1),
        torch.tensor([math.exp(-5.0)], **F64),
        rtol=1e-12,
        atol=0,
    )
    steps = torch.linspace(0, 2, 21, **F64)
    s = similarity(torch.zeros(21, 2, **F64), torch.stack([steps, torch.zeros_like(steps)], 1), 0.3)
    assert bool((s[1:] < s[:-1]).all()) and bool((s > 0).all())


def test_similarity_tends_to_one_as_the_lengthscale_grows_and_the_target_forgets_the_descriptor():
    d, d_prime = torch.tensor([[1.0, -1.0]], **F64), torch.tensor([[-1.0, 1.0]], **F64)
    values = [float(similarity(d, d_prime, length)) for length in (0.1, 1.0, 10.0, 1e3, 1e9)]
    assert values == sorted(values) and abs(values[-1] - 1.0) < 1e-8
    reward, done, next_q = torch.tensor([0.3], **F64), torch.zeros(1, **F64), torch.tensor([[1.0, 2.0]], **F64)
    far = td3_target(reward, similarity(d, d_prime, 1e9), done, next_q, 0.99)
    torch.testing.assert_close(far, td3_target(reward, torch.ones(1, **F64), done, next_q, 0.99), rtol=1e-8, atol=0)


# -- the critic's target on a hand-made transition -------------------------------------------------
def constant_critic(q1: float, q2: float) -> DescriptorCritic:
    """A float64 critic whose two heads output ``q1`` and ``q2`` everywhere (zero weights, set biases)."""
    critic = DescriptorCritic(3, 2, 2, width=4).double()
    with torch.no_grad():
        for head, value in ((critic.q1, q1), (critic.q2, q2)):
            for p in head.parameters():
                p.zero_()
            head[-1].bias.fill_(value)
    return critic


def test_the_critic_target_and_loss_on_a_hand_made_transition_in_float64():
    # r = 0.5, reached d = (0, 0), asked d' = (0.3, 0.4): S = exp(-0.5 / L) with L = 0.5, i.e. exp(-1)
    batch = {
        "obs": torch.tensor([[0.1, 0.2, 0.3]], **F64),
        "action": torch.tensor([[0.5, -0.5]], **F64),
        "reward": torch.tensor([0.5], **F64),
        "next_obs": torch.tensor([[0.2, 0.1, 0.4]], **F64),
        "done": torch.tensor([0.0], **F64),
        "desc": torch.tensor([[0.0, 0.0]], **F64),
        "desc_prime": torch.tensor([[0.3, 0.4]], **F64),
    }
    y = math.exp(-1.0) * 0.5 + 0.9 * min(2.0, 1.5)  # S r + gamma * min(Q1', Q2')
    scale = similarity(batch["desc"], batch["desc_prime"], 0.5)
    torch.testing.assert_close(
        td3_target(batch["reward"], scale, batch["done"], torch.tensor([[2.0, 1.5]], **F64), 0.9),
        torch.tensor([y], **F64),
        rtol=1e-12,
        atol=0,
    )
    torch.testing.assert_close(
        td3_target(batch["reward"], scale, torch.ones(1, **F64), torch.tensor([[2.0, 1.5]], **F64), 0.9),
        torch.tensor([math.exp(-1.0) * 0.5], **F64),
        rtol=1e-12,
        atol=0,
    )
    # the whole loss: online critic 0 and 0.25, target critic 2 and 1.5, no smoothing noise
    loss = critic_loss(
        constant_critic(0.0, 0.25), constant_critic(2.0, 1.5), actor().double(), batch, 0.5, 0.9, 0.0, 0.5, torch.Generator()
    )
    torch.testing.assert_close(loss, torch.tensor(y**2 + (0.25 - y) ** 2, **F64), rtol=1e-12, atol=0)


# -- the MAP-Elites archive -------------------------------------------------------------------------
def test_the_archive_keeps_the_better_elite_on_a_hand_case():
    archive = GridArchive(grid=2, num_params=1)  # cells of [-1, 1]^2: 0 = (-,-), 1 = (+,-), 2 = (-,+), 3 = (+,+)
    d = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5]])
    assert archive.cell_index(d).tolist() == [0, 1, 2]
    added = archive.insert(torch.tensor([[1.0], [2.0], [3.0]]), d, torch.tensor([0.3, 0.6, 0.2]))
    assert added.tolist() == [True, True, True] and archive.coverage() == 0.75
    # a worse and an equal candidate in cell 0 are refused; the better of two in cell 1 wins
    cells = torch.tensor([[-0.2, -0.9], [-0.9, -0.1], [0.1, -0.1], [0.9, -0.9]])
    added = archive.insert(torch.tensor([[10.0], [11.0], [12.0], [13.0]]), cells, torch.tensor([0.1, 0.3, 0.7, 0.9]))
    assert added.tolist() == [False, False, False, True]
    assert archive.genotypes[:3, 0].tolist() == [1.0, 13.0, 3.0]
    torch.testing.assert_close(archive.fitness[:3], torch.tensor([0.3, 0.9, 0.2]), rtol=0, atol=0)
    torch.testing.assert_close(archive.descriptors[1], torch.tensor([0.9, -0.9]), rtol=0, atol=0)
    assert math.isclose(archive.qd_score(), 0.3 + 0.9 + 0.2, rel_tol=1e-6)


def test_the_archive_never_loses_a_filled_cell_nor_lowers_its_fitness():
    g = torch.Generator().manual_seed(0)
    archive = GridArchive(grid=4, num_params=3)
    for _ in range(30):
        before_filled, before_fitness = archive.filled.clone(), archive.fitness.clone()
        archive.insert(torch.randn(8, 3, generator=g), torch.rand(8, 2, generator=g) * 2 - 1, torch.rand(8, generator=g))
        assert bool(archive.filled[before_filled].all())
        assert bool((archive.fitness[before_filled] >= before_fitness[before_filled]).all())


def test_the_targets_are_the_archive_cells_centres_in_cell_order():
    data = nd.data.ArchiveTargets(grid=3)
    x = data.dataset("val").tensors[0]
    archive = GridArchive(grid=3, num_params=0)
    torch.testing.assert_close(x, archive.centres(), rtol=0, atol=1e-6)
    assert archive.cell_index(x).tolist() == list(range(9))
    torch.testing.assert_close(x[1], torch.tensor([0.0, -2.0 / 3.0]), rtol=0, atol=1e-6)  # row y, then column x


def test_isoline_variation_without_iso_noise_stays_on_the_line_through_its_parents():
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(5, 4, generator=g, **F64), torch.randn(5, 4, generator=g, **F64)
    child = isoline_variation(x1, x2, 0.0, 0.5, g)
    ratio = (child - x1) / (x2 - x1)  # the same scalar along a row
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-9, atol=1e-12)


# -- the task, the genotypes and actor injection -----------------------------------------------------
def test_the_task_clips_the_robot_to_the_square_and_scores_one_minus_the_energy():
    env = PointReach(2, horizon=10, max_step=0.2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 3) and obs.abs().sum() == 0
    episodes = play(env, lambda o: torch.tensor([[1.0, 0.0], [0.5, 0.5]]).expand(len(o), 2))
    # robot 0: full right steps reach x = 1 after 5 steps and stay (clipped); energy |a|^2 / 2 = 0.5 a step
    torch.testing.assert_close(episodes.descriptors, torch.tensor([[1.0, 0.0], [1.0, 1.0]]), rtol=0, atol=1e-6)
    torch.testing.assert_close(episodes.fitness, torch.tensor([0.5, 0.75]), rtol=0, atol=1e-6)
    assert episodes.dones[:, -1].tolist() == [1.0, 1.0] and episodes.dones[:, :-1].sum() == 0
    with pytest.raises(ConfigError, match="float actions"):
        env.reset()
        env.step(torch.zeros(2, dtype=torch.long))


def test_an_injected_actor_acts_like_the_actor_asked_for_its_descriptor():
    torch.manual_seed(0)
    net = actor(hidden=(6, 5)).double()
    policy = BatchedPolicy([3, 6, 5, 2])
    d = torch.tensor([[0.3, -0.7], [-0.9, 0.1]], **F64)
    theta = policy.from_actor(net, d)
    assert theta.shape == (2, policy.num_params)
    obs = torch.rand(2, 4, 3, **F64)
    torch.testing.assert_close(policy(theta, obs), act(net, obs, d.unsqueeze(1).expand(2, 4, 2)), rtol=1e-12, atol=1e-12)


# -- a short run ----------------------------------------------------------------------------------------
def test_a_short_run_distils_a_policy_that_covers_more_cells_than_a_random_actor():
    torch.manual_seed(0)  # the student's initialisation; seeds 0-3 reached 70-81% of the cells, a random actor 4%
    run = nd.fit(
        "policy.archive",
        student=actor(hidden=(16, 16)),
        data=nd.data.ArchiveTargets(grid=10, batch_size=10),  # 20 iterations
        max_epochs=2,
    )
    assert run.status == "finished"
    m = run.metrics
    assert m["val/archive_coverage"] > 0.6
    assert m["val/policy_coverage"] > 0.4 and m["val/policy_coverage"] > 5 * m["val/random_coverage"]
    assert m["val/policy_qd_score"] <= 100 and m["val/archive_qd_score"] <= 100
    for name in ("archive_elites", "archive_policy", "archive_coverage"):
        ax = VIEWS[name](Figure().add_subplot(), run.log)
        assert "waiting" not in " ".join(t.get_text() for t in ax.texts), name


def test_a_resumed_run_continues_the_archive_and_the_replay_buffer_exactly():
    def fit(resume=None, epochs=2):
        torch.manual_seed(0)
        kwargs = {"student": actor(), "data": nd.data.ArchiveTargets(batch_size=50), "max_epochs": epochs}
        if resume is not None:
            return nd.resume(resume, **kwargs)
        return nd.fit("policy.archive", critic_steps=4, pg_steps=2, **kwargs)

    straight, resumed = fit(), fit(resume=fit(epochs=1))
    for name in ("val/archive_qd_score", "val/policy_qd_score", "val/policy_distance"):
        assert math.isclose(straight.metrics[name], resumed.metrics[name], rel_tol=1e-6), name


# -- bad input ------------------------------------------------------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    """A training step fails the test: the errors below must come before any."""

    def fail(self, batch):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(ArchiveDistillation, "loss_terms", fail)


@pytest.mark.parametrize(
    ("student", "data", "hparams", "match"),
    [
        (nd.models.MLP(in_features=4, hidden=[8], out_features=2), None, {}, "in_features=5"),
        (nd.models.MLP(in_features=5, hidden=[8], out_features=2, dropout=0.1), None, {}, "without dropout"),
        (None, None, {"ga_batch": 0, "pg_batch": 0}, "no offspring"),
        (None, None, {"grid": 1}, "grid"),
        (None, nd.data.ArchiveTargets(low=-2.0, high=2.0), {}, "square"),
        (None, nd.data.Digits(n_train=60, batch_size=30), {}, "target descriptors"),
    ],
)
def test_bad_input_is_a_config_error_before_training(no_training, student, data, hparams, match):
    with pytest.raises(ConfigError, match=match):
        nd.fit(
            "policy.archive",
            student=student or actor(),
            data=data or nd.data.ArchiveTargets(batch_size=50),
            max_epochs=1,
            **hparams,
        )
