"""policy.dpt and policy.ad: the losses (by hand and against the authors' formulas), the labels, run_model's
alignment, the transformer's causality, a short fit, resume, a user's own plain environment, and bad input."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.fit import build
from nbdistill.data import BernoulliBandits, EnvTasks
from nbdistill.families.policy.algorithms import UCB, Greedy, Random
from nbdistill.families.policy.envs import BernoulliBandit, PlainEnvs
from nbdistill.families.policy.losses import ad_loss, dpt_loss
from nbdistill.families.policy.rollout import run_algorithm, run_model

F64 = {"dtype": torch.float64}


def transformer(arms=3, context=10, **kwargs) -> nd.models.ICTransformer:
    return nd.models.ICTransformer(num_actions=arms, max_context=context, width=16, depth=1, **kwargs)


# -- the losses ------------------------------------------------------------------------------------
def test_dpt_loss_is_the_mean_per_prefix_cross_entropy_against_the_best_arm_on_a_hand_case():
    # one task, one transition, two arms, a* = 0: prefix 0 has logits (0, 0), prefix 1 (ln 3, 0)
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]], **F64)
    expected = (math.log(2.0) + math.log(4.0 / 3.0)) / 2  # -log(1/2) and -log(3/4), averaged over the 2 prefixes
    torch.testing.assert_close(dpt_loss(logits, torch.tensor([0])), torch.tensor(expected, **F64), rtol=1e-12, atol=0)


@pytest.mark.parametrize("arms", [2, 5, 10])
def test_a_uniform_model_scores_log_k_under_both_losses(arms):
    logits = torch.zeros(6, 9, arms, **F64)
    best, actions = torch.randint(arms, (6,)), torch.randint(arms, (6, 8))
    log_k = torch.tensor(math.log(arms), **F64)
    torch.testing.assert_close(dpt_loss(logits, best), log_k, rtol=1e-12, atol=0)
    torch.testing.assert_close(ad_loss(logits, actions), log_k, rtol=1e-12, atol=0)


def _summed_soft_ce(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """The authors' ``CrossEntropyLoss(reduction='sum')`` on one-hot probability targets, written out:
    ``sum_rows -sum_k y_k log softmax(z)_k``."""
    return -(onehot * torch.log(torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True))).sum()


def test_our_losses_are_the_authors_sums_divided_by_tasks_and_prefixes_in_float64():
    g = torch.Generator().manual_seed(0)
    n, t, k = 4, 6, 5
    logits = torch.randn(n, t + 1, k, generator=g, **F64)
    best = torch.randint(k, (n,), generator=g)
    actions = torch.randint(k, (n, t), generator=g)
    star = F.one_hot(best, k).to(torch.float64)[:, None].expand(n, t, k)
    # DPT's train.py: the model returns preds[:, 1:] (the prefixes of 1..T transitions), summed over tasks and prefixes
    lee = _summed_soft_ce(logits[:, 1:], star)
    empty = _summed_soft_ce(logits[:, :1], star[:, :1])  # nbdistill also scores the empty prefix, where DPT acts first online
    torch.testing.assert_close(dpt_loss(logits, best) * n * (t + 1), lee + empty, rtol=1e-12, atol=0)
    torch.testing.assert_close(dpt_loss(logits[:, 1:], best), lee / (n * t), rtol=1e-12, atol=0)  # on DPT's own prefixes
    # Lin, Bai & Mei's train.py: predictions before each transition (prefixes 0..T-1); imit: the context's own actions (AD)
    lbm_ad = _summed_soft_ce(logits[:, :t], F.one_hot(actions, k).to(torch.float64))
    torch.testing.assert_close(ad_loss(logits, actions) * n * t, lbm_ad, rtol=1e-12, atol=0)
    # ... and imit == 'true': the optimal action at those prefixes (their DPT)
    lbm_dpt = _summed_soft_ce(logits[:, :t], star)
    torch.testing.assert_close(dpt_loss(logits[:, :t], best), lbm_dpt / (n * t), rtol=1e-12, atol=0)


# -- labels and deployment -------------------------------------------------------------------------
def test_ad_with_the_oracle_as_expert_has_dpts_labels_and_loss():
    data = BernoulliBandits(arms=4, horizon=8, n_tasks=40, batch_size=10)
    module = build("policy.ad", student=transformer(arms=4, context=8), teacher_algorithm="oracle")
    module.check_data(data)
    x, best = next(iter(data.train_dataloader()))
    env, played = module.play(x, "oracle")
    assert torch.equal(played.actions, best[:, None].expand(-1, 8))  # integer labels: exact
    logits = module.student_logits_on(env, played)
    ad = module.loss_terms((x, best))["loss"]
    torch.testing.assert_close(ad, dpt_loss(logits[:, :8], best), rtol=1e-6, atol=0)


class Replay(nn.Module):
    """A perfectly fitted AD model of a deterministic algorithm: at position ``j`` it replays the algorithm
    on the first ``j`` transitions it is given and puts logit 50 on the algorithm's next action."""

    def __init__(self, algorithm, arms: int):
        super().__init__()
        self.algorithm, self.arms = algorithm, arms
        self.anchor = nn.Parameter(torch.zeros(()))  # run_model reads the device from a parameter

    def forward(self, actions, rewards, obs=None, extra=None):
        n, t = actions.shape
        algorithm = self.algorithm()
        algorithm.reset(SimpleNamespace(num_envs=n, num_actions=self.arms))
        chosen = []
        for j in range(t + 1):
            chosen.append(algorithm.act(None))
            if j < t:
                algorithm.update(actions[:, j], rewards[:, j])
        return 50.0 * F.one_hot(torch.stack(chosen, 1), self.arms).to(torch.float64)


@pytest.mark.parametrize("expert", [Greedy, UCB])
def test_a_model_that_reproduces_a_deterministic_expert_has_its_actions_and_regret_under_run_model(expert):
    means = torch.rand(16, 4, generator=torch.Generator().manual_seed(1))
    env = BernoulliBandit(means, horizon=25)
    played = run_algorithm(expert(), env, 25, torch.Generator().manual_seed(0), seed=3)
    model = Replay(expert, 4)
    deployed = run_model(model, env, 25, torch.Generator().manual_seed(0), seed=3)
    assert torch.equal(deployed.actions, played.actions)
    torch.testing.assert_close(deployed.regret, played.regret, rtol=0, atol=0)
    torch.testing.assert_close(deployed.rewards, played.rewards, rtol=0, atol=0)
    assert float(ad_loss(model(played.actions, played.rewards), played.actions)) < 1e-12  # it is a perfect AD fit


@torch.no_grad()
def test_the_transformer_is_causal_changing_transition_j_leaves_positions_up_to_j_unchanged():
    torch.manual_seed(0)
    model = transformer(arms=4, context=8, obs_dim=2, extra_dim=3).double().eval()
    g = torch.Generator().manual_seed(2)
    actions, rewards = torch.randint(4, (3, 8), generator=g), torch.rand(3, 8, generator=g, **F64)
    obs, extra = torch.randn(3, 2, generator=g, **F64), torch.randn(3, 9, 3, generator=g, **F64)
    before = model(actions, rewards, obs, extra)
    assert before.shape == (3, 9, 4)
    for j in (0, 3, 7):
        changed_a, changed_r = actions.clone(), rewards.clone()
        changed_a[:, j], changed_r[:, j] = (actions[:, j] + 1) % 4, rewards[:, j] + 5.0
        after = model(changed_a, changed_r, obs, extra)
        torch.testing.assert_close(after[:, : j + 1], before[:, : j + 1], rtol=0, atol=1e-12)
        assert float((after[:, j + 1] - before[:, j + 1]).abs().max()) > 1e-6  # transition j is read at position j + 1


def test_run_model_refuses_a_model_with_the_wrong_number_of_arms():
    env = BernoulliBandit(torch.full((2, 3), 0.5), horizon=4)
    with pytest.raises(ConfigError, match="num_actions=3"):
        run_model(transformer(arms=5, context=4), env, 4, torch.Generator().manual_seed(0))


# -- training ---------------------------------------------------------------------------------------
def test_a_short_dpt_fit_lowers_held_out_regret_below_randoms(tmp_path):
    data = BernoulliBandits(arms=3, horizon=10, n_tasks=1000, gap=0.5, batch_size=50)
    torch.manual_seed(0)
    student = nd.models.ICTransformer(num_actions=3, max_context=10, width=32, depth=2)
    run = nd.fit("policy.dpt", student=student, data=data, max_epochs=8, eval_tasks=10, runs_root=tmp_path, seed=0)
    env = data.make_env(data.tasks("test"))
    student = run_model(run.module.student, env, 10, torch.Generator().manual_seed(0), seed=5).cumulative_regret()[:, -1].mean()
    chance = run_algorithm(Random(), env, 10, torch.Generator().manual_seed(0), seed=5).cumulative_regret()[:, -1].mean()
    print(f"held-out regret after 8 epochs (128 steps): DPT {float(student):.3f}, random {float(chance):.3f}")
    assert float(student) < 0.8 * float(chance)


def test_a_resumed_run_replays_the_same_contexts_as_an_uninterrupted_one(tmp_path):
    def fit(**kwargs):
        data = BernoulliBandits(arms=3, horizon=6, n_tasks=100, batch_size=20)
        return nd.fit("policy.ad", student=transformer(context=6), data=data, eval_tasks=5, runs_root=tmp_path, seed=0, **kwargs)

    torch.manual_seed(0)
    whole = fit(max_epochs=2)
    torch.manual_seed(0)
    first = fit(max_epochs=1, checkpoint_every_epochs=1)
    data = BernoulliBandits(arms=3, horizon=6, n_tasks=100, batch_size=20)
    resumed = nd.resume(first, student=transformer(context=6), data=data, max_epochs=2)
    for (name, a), b in zip(whole.module.student.state_dict().items(), resumed.module.student.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


# -- a user's own environment, written the plain Gymnasium way ---------------------------------------------
class CoinBandit:
    """A user's K-armed Bernoulli bandit, one task, Python numbers: the best arm pays 0.75, the others 0.25."""

    def __init__(self, seed: int, arms: int = 3, horizon: int = 10, reported_arms: int | None = None):
        best = random.Random(seed).randrange(arms)
        self.means = [0.75 if a == best else 0.25 for a in range(reported_arms or arms)]
        self.action_space = SimpleNamespace(n=arms)  # what gymnasium.spaces.Discrete(arms) says
        self.horizon = horizon
        self.rng = random.Random()

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng.seed(seed)
        return 0, {}

    def step(self, action: int):
        assert 0 <= action < self.action_space.n
        return 0, float(self.rng.random() < self.means[action]), False, False, {}


def test_env_tasks_rows_are_seeds_and_labels_the_user_envs_best_arms():
    tasks = EnvTasks(CoinBandit, n_tasks=30, data_seed=2)
    tasks.setup()
    x, y = tasks.dataset("train").tensors
    assert tasks.num_actions == 3 and tasks.horizon == 10 and tasks.obs_dim == 1
    assert [int(s) for s in x[:, 0]] == list(range(60, 60 + len(x)))
    assert y.tolist() == [max(range(3), key=CoinBandit(int(s)).means.__getitem__) for s in x[:, 0]]
    assert isinstance(tasks.make_env(x[:4]), PlainEnvs)


@pytest.mark.parametrize("method, extra", [("policy.dpt", {}), ("policy.ad", {"teacher_algorithm": "ucb"})])
def test_a_student_trains_on_a_users_plain_envs_and_plays_them(tmp_path, method, extra):
    tasks = EnvTasks(CoinBandit, n_tasks=120, batch_size=40)
    student = transformer(obs_dim=tasks.obs_dim)
    run = nd.fit(method, student=student, data=tasks, max_epochs=2, eval_tasks=20, runs_root=tmp_path, seed=0, **extra)
    assert math.isfinite(run.metrics["val/regret"]) and math.isfinite(run.metrics["test/regret"])
    plain = PlainEnvs([CoinBandit(10_000 + i) for i in range(6)])
    played = run_model(run.module.student, plain, 10, torch.Generator().manual_seed(0), seed=1)
    assert played.actions.shape == (6, 10) and played.regret.shape == (6, 10)
    assert bool(((played.regret == 0) | (played.regret - 0.5).abs().lt(1e-6)).all())  # mu* - mu_a is 0 or 0.5


# -- bad input, refused before training --------------------------------------------------------------
def bernoulli(**kwargs):
    return BernoulliBandits(**{"arms": 3, "horizon": 10, "n_tasks": 40, "batch_size": 10, **kwargs})


BAD = {
    "user env with fewer actions than the student": (
        "policy.dpt",
        lambda: transformer(arms=5, obs_dim=1),
        lambda: EnvTasks(CoinBandit, n_tasks=20),
        {},
        r"3 arms.*num_actions=3",
    ),
    "user env whose best arm is out of its action range": (
        "policy.dpt",
        lambda: transformer(obs_dim=1),
        lambda: EnvTasks(lambda s: CoinBandit(s, reported_arms=4), n_tasks=20),
        {},
        r"3 actions.*expected rewards of 4 arms",
    ),
    "context longer than the horizon": (
        "policy.dpt",
        lambda: transformer(context=30),
        bernoulli,
        {"context": 30},
        r"longer than the tasks' horizon",
    ),
    "horizon longer than the transformer's context": (
        "policy.ad",
        lambda: transformer(context=5),
        bernoulli,
        {},
        r"max_context=10",
    ),
    "student with the wrong number of arms": ("policy.ad", lambda: transformer(arms=4), bernoulli, {}, r"3 arms.*num_actions=3"),
    "guide the student cannot read": ("policy.dpt", transformer, bernoulli, {"guide": "ucb"}, r"extra_dim=9"),
    "LinUCB teacher on Bernoulli tasks": (
        "policy.ad",
        transformer,
        bernoulli,
        {"teacher_algorithm": "linucb"},
        r"linucb cannot play",
    ),
    "LinUCB guide on Bernoulli tasks": (
        "policy.dpt",
        lambda: transformer(extra_dim=9),
        bernoulli,
        {"guide": "linucb"},
        r"linucb cannot play",
    ),
    "data that are not bandit tasks": ("policy.dpt", transformer, lambda: nd.data.Digits(), {}, r"plays bandit tasks"),
    "arrays that are not bandit tasks": (
        "policy.ad",
        transformer,
        lambda: {k: (torch.rand(20, 3), torch.arange(20) % 3) for k in ("train", "val", "test")},
        {},
        r"plays bandit tasks",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_config_error_before_training(tmp_path, case):
    method, student, data, hparams, message = BAD[case]
    with pytest.raises(ConfigError, match=message):
        nd.fit(method, student=student(), data=data(), max_epochs=1, runs_root=tmp_path, **hparams)
    assert not any(tmp_path.iterdir())  # no run folder: nothing trained
