"""``policy.aacd``: asymmetric actor-critic distillation (TacSL, Akinola et al. 2024, arXiv 2408.06506).

**What was confirmed** (the paper's text, Section IV-B2, Algorithm 3 and Fig. 5, read from a stored copy;
the authors' code — IsaacGymEnvs' ``tacsl`` branch, rl_games — was not read):

    Stage 1: a randomly initialised low-dimensional actor pi_theta_s(s) and critic V_phi_s(s) on the
    privileged state s are trained by RL from scratch: for n < N, collect rollouts with pi_theta_s,
    update theta_s with the PPO objective and V_phi_s, update phi_s with the Bellman loss.
    Stage 2: a randomly initialised high-dimensional actor pi_theta_o(o) on the observations o is trained
    with the PPO objective, the advantages coming from the *pretrained privileged critic* V_phi_s(s),
    which keeps being fine-tuned with the Bellman loss on the student's own rollouts.

So AACD distils the **critic**, not the actions: Algorithm 3 has no behaviour-cloning term. The paper
compares it with policy-distillation baselines (DAgger-style online BC of the expert); we offer:

- ``mode="aacd"``: stage 2 above. Loss ``L = L_clip(theta_o; A) + c_v L_V(phi_s) + w_bc L_BC``, with
  ``L_clip = -E[min(rho A, clip(rho, 1-eps, 1+eps) A)]``, ``rho = pi_theta_o(a|o) / pi_old(a|o)``,
  ``A`` from GAE on ``V_phi_s(s)`` (:mod:`.aacd_ppo`), ``L_V = E[(V_phi_s(s) - R)^2] / 2`` and
  ``L_BC = E|mu_theta_o(o) - mu_teacher(s)|^2`` on the visited states. ``bc_weight`` is 0 by default
  (the paper's algorithm); a positive weight is our addition (an AACD + DAgger mix);
- ``mode="dagger"``: the student acts, it is trained only by ``L_BC`` toward the teacher's actions on
  the states it visits (DAgger with beta = 0, Ross et al. 2011);
- ``mode="bc"``: the teacher acts, the student is trained by ``L_BC`` on the teacher's states (offline
  BC, the covariate-shift baseline).

**Assumed (not confirmed):** the PPO details (GAE lambda, clip 0.2, advantage normalisation per rollout,
a state-independent learned log-std, ``ppo_epochs`` full-batch gradient steps per rollout, the episode
time-out treated as terminal, with ``t / T`` in the privileged state); TacSL's critic is recurrent and
its observations are tactile images — here both are small MLPs on the toy task of :mod:`.aacd_env`.
``student_init="teacher"`` (copy the teacher's actor; needs ``observe="privileged"``) is not in the
paper: it exists to show that AACD then reduces to continued PPO from the teacher's weights.

Each Lightning step is one PPO gradient step; a fresh rollout of the batch's goals is collected every
``ppo_epochs`` steps (seeded by its index, so a resume replays it). The teacher is trained in ``setup``
(``teacher_steps`` PPO iterations) and its trained flag is kept in checkpoints.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.module import DistillModule
from ...core.registry import HParam, register
from ...models import MLP
from . import aacd_views  # noqa: F401  (registers the views)
from .aacd_env import OBSERVATIONS, ReachEnv
from .aacd_evaluation import ReachEvaluation
from .aacd_ppo import gae, gaussian_log_prob, ppo_clip_loss, value_loss

MODES = ("aacd", "dagger", "bc")
#: teacher-phase events written at most this many times
TEACHER_EVENTS = 50


@torch.no_grad()
def collect(
    env: ReachEnv, actor: nn.Module, log_std: torch.Tensor, reads_state: bool, seed: int, record: nn.Module | None = None
):
    """One episode of every env with ``actor`` sampling ``a ~ N(mu, exp(log_std)^2)`` (on the state when
    ``reads_state``, else on the observation); returns time-major tensors: ``obs`` (the student's
    observation) ``[T, N, o]``, ``states`` ``[T, N, 5]`` (``[p, g, t/T]``), ``actions``, ``log_prob``,
    ``rewards``, ``done`` and ``success`` ``[N]``."""
    generator = torch.Generator().manual_seed(int(seed))
    obs, _ = env.reset(seed=seed)
    out: dict[str, list] = {k: [] for k in ("obs", "states", "actions", "log_prob", "rewards", "done")}
    for t in range(env.horizon):
        state = timed_state(env, t)
        mean = actor(state if reads_state else obs)
        action = mean + torch.exp(log_std) * torch.randn(mean.shape, generator=generator)
        out["obs"].append(obs)
        out["states"].append(state)
        out["actions"].append(action)
        out["log_prob"].append(gaussian_log_prob(action, mean, log_std))
        obs, reward, terminated, truncated, info = env.step(action)
        out["rewards"].append(reward)
        out["done"].append(terminated | truncated)
    rollout = {k: torch.stack(v) for k, v in out.items()}
    rollout["success"] = info["success"]
    return rollout


def apply(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net`` on the last dimension of ``x`` ``[..., d]`` (the networks flatten their inputs per row)."""
    return net(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


def timed_state(env: ReachEnv, t: int) -> torch.Tensor:
    """The privileged state with the time: ``[p, g, t / T]``."""
    return torch.cat([env.state(), torch.full((env.num_envs, 1), t / env.horizon)], -1)


def advantages_of(rollout: dict, critic: nn.Module, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE advantages (normalised over the rollout) and returns from the privileged critic ``V(s)``."""
    with torch.no_grad():
        values = apply(critic, rollout["states"]).squeeze(-1)
    adv, returns = gae(rollout["rewards"], values, torch.zeros_like(values[-1]), rollout["done"], gamma, lam)
    return (adv - adv.mean()) / (adv.std() + 1e-8), returns


@register("policy.aacd", views=("losses", "aacd_return", "aacd_teacher", "aacd_paths"), needs_teacher=False)
class AACD(DistillModule):
    """Asymmetric actor-critic distillation (TacSL): a student actor on restricted observations trained by PPO with a privileged critic.

    The student is an actor network ``obs [B, 7] -> action mean [B, 2]`` (``nbdistill.models.MLP(7, [64, 64], 2)``;
    ``in_features=5`` with ``observe="privileged"``); the data are :class:`nbdistill.data.ReachTasks`.
    """

    lr = HParam(float, 3e-3, 1e-5, 1.0, log=True, help="Adam learning rate (teacher, student and critic)")
    mode = HParam(
        str,
        "aacd",
        choices=MODES,
        help="aacd: PPO + privileged critic; dagger: BC on the student's states; bc: BC on the teacher's",
    )
    teacher_steps = HParam(
        int, 40, 1, 100_000, help="PPO iterations (rollout + ppo_epochs steps) of the privileged teacher, stage 1"
    )
    teacher_width = HParam(int, 64, 4, 4096, help="hidden width of the teacher's actor and of the critic (two layers)")
    ppo_epochs = HParam(int, 4, 1, 64, help="gradient steps on each collected rollout")
    clip = HParam(float, 0.2, 0.01, 1.0, help="PPO's clip range epsilon")
    gamma = HParam(float, 0.95, 0.0, 1.0, help="discount")
    gae_lambda = HParam(float, 0.9, 0.0, 1.0, help="GAE's lambda")
    value_weight = HParam(float, 0.5, 0.0, 100.0, help="weight c_v of the critic's Bellman (value) loss")
    bc_weight = HParam(float, 0.0, 0.0, 100.0, help="weight of the BC term in mode aacd (0: the paper's algorithm)")
    log_std_init = HParam(float, -0.5, -5.0, 2.0, help="initial log-std of the Gaussian policies")
    observe = HParam(str, "restricted", choices=OBSERVATIONS, help="the student's input: restricted obs, or the privileged state")
    student_init = HParam(
        str, "random", choices=("random", "teacher"), help="random (the paper), or the teacher's actor (observe=privileged)"
    )
    seed = HParam(int, 0, 0, 2**31 - 1, help="seed of the teacher's training and of the rollouts")
    evaluation_class = ReachEvaluation

    # -- parts ----------------------------------------------------------------------------------
    def build_parts(self) -> None:
        w = int(self.teacher_width)
        torch.manual_seed(int(self.seed))
        self.teacher_actor = MLP(5, [w, w], 2)
        self.critic = MLP(5, [w, w], 1)
        self.teacher_log_std = nn.Parameter(torch.full((2,), float(self.log_std_init)))
        self.student_log_std = nn.Parameter(torch.full((2,), float(self.log_std_init)))
        if self.student_init == "teacher" and self.observe != "privileged":
            raise ConfigError("policy.aacd's student_init='teacher' needs observe='privileged' (the teacher reads the state)")
        dim = 5 if self.observe == "privileged" else 7
        try:
            out = self.student(torch.zeros(2, dim))
        except Exception as exc:  # noqa: BLE001  (any failure means the student does not fit)
            raise ConfigError(f"policy.aacd's student must map observations [B, {dim}] to actions [B, 2]: {exc}") from None
        if tuple(out.shape) != (2, 2):
            raise ConfigError(
                f"policy.aacd's student must map observations [B, {dim}] to actions [B, 2], got shape {tuple(out.shape)}"
            )
        self._rollout: dict | None = None
        self._teacher_trained = False

    def student_reads_state(self) -> bool:
        return self.observe == "privileged"

    def make_env(self, goals: torch.Tensor) -> ReachEnv:
        tasks = self.trainer.datamodule if self._trainer is not None else self._tasks
        return tasks.make_env(goals.detach().cpu(), observe=self.observe)

    def check_data(self, data: Any) -> None:
        if not callable(getattr(data, "make_env", None)) or getattr(data, "horizon", None) is None:
            raise ConfigError(f"policy.aacd plays reaching tasks: give it nbdistill.data.ReachTasks(), got {type(data).__name__}")
        data.setup()
        x = data.dataset("train").tensors[0] if callable(getattr(data, "dataset", None)) else None
        if x is not None and (x.ndim != 2 or x.shape[1] != 2):
            raise ConfigError(f"policy.aacd's tasks are 2-D goals [n, 2] (nbdistill.data.ReachTasks), got shape {tuple(x.shape)}")
        self._tasks = data

    # -- stage 1: the privileged teacher (PPO) ----------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and not self._teacher_trained:
            self.train_teacher(self.trainer.datamodule)

    def train_teacher(self, tasks: Any) -> list[float]:
        """``teacher_steps`` PPO iterations of the teacher's actor and the critic on the privileged state
        (Algorithm 3, lines 1-6); writes ``teacher/return`` and ``teacher/success``; returns the returns."""
        start, writer, returns = time.perf_counter(), self._run_writer(), []
        goals = tasks.dataset("train").tensors[0] if callable(getattr(tasks, "dataset", None)) else None
        params = [*self.teacher_actor.parameters(), self.teacher_log_std, *self.critic.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        generator = torch.Generator().manual_seed(int(self.seed))
        batch = int(getattr(tasks, "batch_size", 64))
        steps = int(self.teacher_steps)
        for step in range(steps):
            pick = goals[torch.randint(len(goals), (batch,), generator=generator)]
            env = tasks.make_env(pick, observe="privileged")
            rollout = collect(env, self.teacher_actor, self.teacher_log_std.detach(), True, seed=7919 * step + int(self.seed))
            adv, ret = advantages_of(rollout, self.critic, self.gamma, self.gae_lambda)
            for _ in range(int(self.ppo_epochs)):
                loss = self.ppo_terms(rollout, adv, ret, self.teacher_actor, self.teacher_log_std, reads_state=True)["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            returns.append(float(rollout["rewards"].sum(0).mean()))
            if writer is not None and (step % max(1, steps // TEACHER_EVENTS) == 0 or step == steps - 1):
                writer.scalar("teacher/return", returns[-1], step=step)
                writer.scalar("teacher/success", float(rollout["success"].float().mean()), step=step)
        opt.zero_grad(set_to_none=True)  # leave no stale gradient for stage 2's optimiser
        self._teacher_trained = True
        if self.student_init == "teacher":
            self.student.load_state_dict(self.teacher_actor.state_dict())
            with torch.no_grad():
                self.student_log_std.copy_(self.teacher_log_std)
        if writer is not None:
            writer.scalar("teacher/seconds", time.perf_counter() - start, step=steps)
            writer.flush()
        return returns

    def ppo_terms(
        self, rollout: dict, adv: torch.Tensor, ret: torch.Tensor, actor: nn.Module, log_std: torch.Tensor, reads_state: bool
    ):
        """``L_clip + c_v L_V`` of ``actor`` on a rollout (the critic reads the privileged states)."""
        mean = apply(actor, rollout["states"] if reads_state else rollout["obs"])
        ppo = ppo_clip_loss(gaussian_log_prob(rollout["actions"], mean, log_std), rollout["log_prob"], adv, self.clip)
        value = value_loss(apply(self.critic, rollout["states"]).squeeze(-1), ret)
        return {"loss": ppo + self.value_weight * value, "ppo": ppo, "value": value, "mean": mean}

    # -- stage 2: the student ---------------------------------------------------------------------
    def rollout_for(self, goals: torch.Tensor) -> dict:
        """The rollout this step trains on: a fresh one every ``ppo_epochs`` steps (the student acts, or
        the teacher in mode bc), with its advantages from the privileged critic."""
        cycle, phase = divmod(int(self.global_step), int(self.ppo_epochs))
        if phase == 0 or self._rollout is None:
            env = self.make_env(goals)
            seed = 1_000_003 * cycle + int(self.seed) + 17
            if self.mode == "bc":
                rollout = collect(env, self.teacher_actor, self.teacher_log_std.detach(), True, seed)
            else:
                rollout = collect(env, self.student, self.student_log_std.detach(), self.student_reads_state(), seed)
            rollout = {k: v.to(self.device) for k, v in rollout.items()}
            rollout["adv"], rollout["ret"] = advantages_of(rollout, self.critic, self.gamma, self.gae_lambda)
            self._rollout = rollout
        return self._rollout

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        goals = batch[0] if isinstance(batch, (list, tuple)) else batch
        rollout = self.rollout_for(goals)
        reads_state = self.student_reads_state()
        with torch.no_grad():
            target = apply(self.teacher_actor, rollout["states"])
        if self.mode != "aacd":
            bc = (apply(self.student, rollout["states"] if reads_state else rollout["obs"]) - target).pow(2).sum(-1).mean()
            return {"loss": bc, "bc": bc, "rollout_return": rollout["rewards"].sum(0).mean()}
        terms = self.ppo_terms(rollout, rollout["adv"], rollout["ret"], self.student, self.student_log_std, reads_state)
        bc = (terms.pop("mean") - target).pow(2).sum(-1).mean()
        terms["loss"] = terms["loss"] + self.bc_weight * bc
        return {**terms, "bc": bc.detach(), "rollout_return": rollout["rewards"].sum(0).mean()}

    # -- checkpoints: the teacher's phase ---------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aacd_teacher_trained"] = bool(self._teacher_trained)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._teacher_trained = bool(checkpoint.get("aacd_teacher_trained", False))
        self._rollout = None
