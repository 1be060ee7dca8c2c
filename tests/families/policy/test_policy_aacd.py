"""policy.aacd (TacSL's asymmetric actor-critic distillation): PPO / GAE math by hand, the toy task, the reduction
to continued PPO when the student sees the privileged state, a short run beating a random policy, bad input refused."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.policy.aacd import AACD, advantages_of, apply, collect
from nbdistill.families.policy.aacd_env import ReachEnv
from nbdistill.families.policy.aacd_evaluation import act
from nbdistill.families.policy.aacd_ppo import gae, gaussian_log_prob, ppo_clip_loss, value_loss

F64 = torch.float64


def test_gae_by_hand():
    """r = (1, 2, 3), V = (0.5, 1, 1.5), gamma 0.9, lambda 0.8, the episode ending at t = 2:
    deltas 1.4, 2.35, 1.5; A_2 = 1.5, A_1 = 2.35 + 0.72 * 1.5 = 3.43, A_0 = 1.4 + 0.72 * 3.43 = 3.8696."""
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=F64)
    values = torch.tensor([[0.5], [1.0], [1.5]], dtype=F64)
    done = torch.tensor([[False], [False], [True]])
    adv, ret = gae(rewards, values, torch.tensor([7.0], dtype=F64), done, 0.9, 0.8)
    torch.testing.assert_close(adv, torch.tensor([[3.8696], [3.43], [1.5]], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(ret, torch.tensor([[4.3696], [4.43], [3.0]], dtype=F64), rtol=0, atol=1e-12)


def test_gae_does_not_cross_episode_ends_and_bootstraps_the_last_value():
    """An end at t = 0 stops the carry (A_0 = 1 - 0.5); no end at the last step bootstraps V(s_T) = 2:
    A_1 = 2 + 0.9 * 2 - 1 = 2.8."""
    rewards = torch.tensor([[1.0], [2.0]], dtype=F64)
    values = torch.tensor([[0.5], [1.0]], dtype=F64)
    adv, _ = gae(rewards, values, torch.tensor([2.0], dtype=F64), torch.tensor([[True], [False]]), 0.9, 0.8)
    torch.testing.assert_close(adv, torch.tensor([[0.5], [2.8]], dtype=F64), rtol=0, atol=1e-12)


def test_ppo_clip_loss_by_hand():
    """ratios 1.5, 0.5, 1.1, 0.7 with advantages 1, 1, -2, -1 and eps 0.2: min terms 1.2, 0.5, -2.2, -0.8,
    mean -0.325, loss 0.325."""
    old = torch.zeros(4, dtype=F64)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.7], dtype=F64))
    adv = torch.tensor([1.0, 1.0, -2.0, -1.0], dtype=F64)
    torch.testing.assert_close(ppo_clip_loss(new, old, adv, 0.2), torch.tensor(0.325, dtype=F64), rtol=0, atol=1e-12)


def test_gaussian_log_prob_and_value_loss():
    """The log-density matches torch.distributions.Normal (a second way); the value loss is half the mean square."""
    a, mean, log_std = torch.randn(5, 2, dtype=F64), torch.randn(5, 2, dtype=F64), torch.tensor([-0.3, 0.2], dtype=F64)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(a).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(a, mean, log_std), expected, rtol=0, atol=1e-12)
    got = value_loss(torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([0.0, 4.0], dtype=F64))
    torch.testing.assert_close(got, torch.tensor(1.25, dtype=F64), rtol=0, atol=1e-12)


def test_reach_env_observations_and_touch():
    """The privileged observation is the state [p, g]; the restricted one shows the exact offset only within touch range."""
    goals = torch.tensor([[0.1, 0.0], [1.0, 1.0]])
    env = ReachEnv(goals, horizon=3, noise=0.0, observe="restricted")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 7)
    torch.testing.assert_close(obs[:, 2:4], goals, rtol=0, atol=1e-7)  # noise 0: the goal itself
    torch.testing.assert_close(obs[0, 4:], torch.tensor([0.1, 0.0, 1.0]), rtol=0, atol=1e-7)  # within touch: offset
    torch.testing.assert_close(obs[1, 4:], torch.zeros(3), rtol=0, atol=0.0)  # out of reach: nothing
    obs, reward, terminated, truncated, info = env.step(torch.tensor([[0.5, 0.0], [5.0, 5.0]]))
    torch.testing.assert_close(env.position, torch.tensor([[0.1, 0.0], [0.2, 0.2]]), rtol=0, atol=1e-7)  # clipped to [-1, 1]
    torch.testing.assert_close(reward, -torch.tensor([0.0, 0.8 * math.sqrt(2)]), rtol=0, atol=1e-6)
    assert info["success"].tolist() == [True, False] and not truncated.any() and not terminated.any()
    privileged = ReachEnv(goals, observe="privileged")
    torch.testing.assert_close(privileged.reset(seed=0)[0], privileged.state(), rtol=0, atol=0.0)


def tasks(**kwargs):
    data = nd.data.ReachTasks(**{"n_tasks": 64, "n_eval": 32, "horizon": 10, "batch_size": 32, **kwargs})
    data.setup()
    return data


def test_with_the_privileged_state_aacd_is_continued_ppo_from_the_teacher():
    """observe='privileged' + student_init='teacher': the student is the teacher's actor, and AACD's first training
    step (its rollout, its loss, its gradients) is the PPO step that continues the teacher's own training. float32,
    tolerance 1e-6 (the same operations in the same order)."""
    data = tasks()
    module = AACD(
        student=nd.models.MLP(5, [16, 16], 2), teacher_steps=3, teacher_width=16, observe="privileged", student_init="teacher"
    )
    module.check_data(data)
    module.train_teacher(data)
    goals = data.dataset("train").tensors[0][:32]
    terms = module.loss_terms((goals, torch.zeros(32, dtype=torch.long)))
    terms["loss"].backward()

    teacher, log_std = copy.deepcopy(module.teacher_actor), module.teacher_log_std.detach().clone().requires_grad_(True)
    critic = copy.deepcopy(module.critic)
    rollout = collect(data.make_env(goals, observe="privileged"), teacher, log_std.detach(), True, seed=17)
    adv, ret = advantages_of(rollout, critic, module.gamma, module.gae_lambda)
    mean = apply(teacher, rollout["states"])
    ppo = ppo_clip_loss(gaussian_log_prob(rollout["actions"], mean, log_std), rollout["log_prob"], adv, module.clip)
    loss = ppo + module.value_weight * value_loss(apply(critic, rollout["states"]).squeeze(-1), ret)
    loss.backward()

    torch.testing.assert_close(module._rollout["actions"], rollout["actions"], rtol=0, atol=1e-6)
    torch.testing.assert_close(terms["loss"].detach(), loss.detach(), rtol=0, atol=1e-6)
    for mine, theirs in zip(module.student.parameters(), teacher.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(module.student_log_std.grad, log_std.grad, rtol=0, atol=1e-6)
    for mine, theirs in zip(module.critic.parameters(), critic.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=1e-6)


def test_a_short_aacd_run_beats_a_random_policy_and_its_untrained_self():
    data = nd.data.ReachTasks(n_tasks=256, n_eval=64, horizon=20, batch_size=64)
    torch.manual_seed(0)
    student = nd.models.MLP(7, [64, 64], 2)
    data.setup()
    goals = data.dataset("val").tensors[0]
    before = float(act(data.make_env(goals), student, False)["return"].mean())
    run = nd.fit("policy.aacd", student=student, data=data, max_epochs=8, hparams={"teacher_steps": 25})
    assert run.status == "finished"
    after, chance = run.metrics["val/student_return"], run.metrics["val/random_return"]
    # measured (seeds 0, 1, 2 of the student): after -8.4 / -9.1 / -8.2, before -14.4 / -15.2 / -14.8, random -16.0
    assert after > chance + 4.0, (after, chance)
    assert after > before + 3.0, (after, before)
    assert run.metrics["val/teacher_success"] > 0.8


def test_the_teacher_phase_survives_checkpoints():
    module = AACD(student=nd.models.MLP(7, [8], 2), teacher_width=8)
    module._teacher_trained = True
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    fresh = AACD(student=nd.models.MLP(7, [8], 2), teacher_width=8)
    fresh.on_load_checkpoint(checkpoint)
    assert fresh._teacher_trained is True


@pytest.mark.parametrize(
    ("student", "data", "hparams", "match"),
    [
        (nd.models.MLP(5, [8], 2), None, {}, r"\[B, 7\]"),
        (nd.models.MLP(7, [8], 3), None, {}, r"actions \[B, 2\]"),
        (nd.models.MLP(7, [8], 2), None, {"student_init": "teacher"}, "observe='privileged'"),
        (nd.models.MLP(7, [8], 2), None, {"teacher_steps": 0}, "teacher_steps"),
        (nd.models.MLP(7, [8], 2), nd.data.BernoulliBandits(arms=5, horizon=20, n_tasks=40, batch_size=20), {}, "ReachTasks"),
    ],
)
def test_bad_input_is_refused_before_training(student, data, hparams, match, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training began")

    monkeypatch.setattr(AACD, "train_teacher", fail)
    with pytest.raises(ConfigError, match=match):
        nd.fit("policy.aacd", student=student, data=data or tasks(), max_epochs=1, hparams=hparams)
