"""``score.progressive``: Progressive Distillation (Salimans & Ho, ICLR 2022, Alg. 2).

Rounds: in each, the student learns to do in one DDIM step what its teacher does in two. A round
with student step count ``N`` draws ``i ~ U{0..N-1}`` on the ``N``-step grid ``t_0 > ... > t_N`` of
the schedule (:meth:`~.schedule.VPSchedule.timesteps`), sets ``t = t_i``, ``t'' = t_{i+1}`` and
``t'`` half way, noises a data batch ``z_t = α_t x + σ_t ε``, lets the teacher take two DDIM steps
``z_t -> z_t' -> z_t''`` and regresses the student's x0-prediction on the target of
:func:`.losses.progressive_target` with the weight ``max(SNR_t, 1)``. After ``round_steps`` training
steps the student becomes the teacher (a frozen copy) and ``N`` halves (rounded up), until it
reaches ``steps``; training then goes on at ``N = steps``. The first round distils the given
teacher, sampled with ``teacher_steps`` steps, so it starts at ``N = ceil(teacher_steps / 2)``.
"""

from __future__ import annotations

import copy
import math

import torch

from ...core.errors import ConfigError
from ...core.module import freeze
from ...core.registry import HParam, register
from . import losses
from .base import SCORE_VIEWS, ScoreModule
from .samplers import ddim_step


@register("score.progressive", views=SCORE_VIEWS)
class ProgressiveDistillation(ScoreModule):
    """Progressive distillation: halve the sampling steps each round by matching two teacher DDIM steps with one (Salimans & Ho, 2022).

    The student (a denoiser) starts from its own weights, or from the teacher's with ``init="teacher"``
    (the paper's start; the architectures must match); ``N``, the current student step count, is
    ``student_steps``; each evaluation logs the steps it sampled with as ``val/sampling_steps``.
    """

    teacher_steps = HParam(int, 64, 2, 4096, help="DDIM steps of the teacher the first round distils")
    steps = HParam(int, 1, 1, 4096, help="the student's final number of sampling steps")
    round_steps = HParam(int, 300, 1, 1_000_000, help="training steps per halving round")
    init = HParam(str, "given", choices=("given", "teacher"), help="start the student from its own weights or the teacher's")

    def build_parts(self) -> None:
        super().build_parts()
        if not 1 <= self.steps <= self.teacher_steps:
            raise ConfigError(
                f"score.progressive's steps must be between 1 and the teacher's step count teacher_steps={self.teacher_steps}, "
                f"got steps={self.steps}; the student distils the teacher into fewer steps"
            )
        if self.init == "teacher":
            copy_teacher_weights(self.teacher, self.student, self.method_name)
        #: the current student step count N (halves after each round, down to ``steps``)
        self.student_steps = max(math.ceil(self.teacher_steps / 2), self.steps)
        self.rounds_done = 0
        self._round_batches = 0
        #: the frozen copy of the student that teaches the current round (after the first); kept out of
        #: the module's children so that it is neither optimised nor checkpointed
        self._round_teacher: list[torch.nn.Module] = []

    @property
    def sampling_steps(self) -> int:
        return self.student_steps

    def current_teacher(self) -> torch.nn.Module:
        """The teacher of this round: the given teacher in the first round, the previous student after."""
        return self._round_teacher[0] if self._round_teacher else self.teacher

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        n, b = self.student_steps, x.shape[0]
        grid = self.noise.timesteps(n, dtype=x.dtype, device=x.device)
        i = torch.randint(n, (b,), device=x.device)
        t, t2 = grid[i], grid[i + 1]
        t1 = 0.5 * (t + t2)
        alpha_t, sigma_t = self.noise.alpha(t), self.noise.sigma(t)
        alpha_t2, sigma_t2 = self.noise.alpha(t2), self.noise.sigma(t2)
        view = (-1,) + (1,) * (x.dim() - 1)
        z_t = alpha_t.reshape(view) * x + sigma_t.reshape(view) * torch.randn_like(x)
        teacher = self.current_teacher()
        with torch.no_grad():
            z_t2 = ddim_step(teacher, self.noise, ddim_step(teacher, self.noise, z_t, t, t1), t1, t2)
            target = losses.progressive_target(z_t, z_t2, alpha_t, sigma_t, alpha_t2, sigma_t2)
        terms = losses.progressive_loss(self.student(z_t, t), target, losses.truncated_snr_weight(alpha_t, sigma_t))
        return terms

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._round_batches += 1
        if self._round_batches >= self.round_steps and self.student_steps > self.steps:
            self.next_round()

    def next_round(self) -> None:
        """End the round: the student becomes the (frozen) teacher and ``N`` halves, rounded up, not below ``steps``."""
        self._round_teacher = [freeze(copy.deepcopy(self.student))]
        self.student_steps = max(math.ceil(self.student_steps / 2), self.steps)
        self.rounds_done += 1
        self._round_batches = 0

    # -- the round survives a checkpoint (``nbdistill resume``, ``--ckpt_path``) ---------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        teacher = self._round_teacher[0].state_dict() if self._round_teacher else None
        checkpoint["progressive"] = {
            "student_steps": self.student_steps,
            "rounds_done": self.rounds_done,
            "round_batches": self._round_batches,
            "round_teacher": teacher,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("progressive")
        if state is None:
            return
        self.student_steps, self.rounds_done = state["student_steps"], state["rounds_done"]
        self._round_batches = state["round_batches"]
        self._round_teacher = []
        if state["round_teacher"] is not None:
            teacher = copy.deepcopy(self.student)
            teacher.load_state_dict(state["round_teacher"])
            self._round_teacher = [freeze(teacher)]


def copy_teacher_weights(teacher: torch.nn.Module | None, student: torch.nn.Module, method: str = "this method") -> None:
    """Load ``teacher``'s weights into ``student`` (a zoo teacher's network is its ``net``), or a
    :class:`ConfigError` naming ``method`` and why they do not fit."""
    fix = (
        "give a student of the teacher's architecture (the shipped 2-D teachers are "
        "MLPDenoiser(2, hidden=128, depth=4, time_embedding=32)) or init='given'"
    )
    if teacher is None:
        raise ConfigError(f"{method}'s init='teacher' copies the teacher's weights: pass teacher=..., or {fix}")
    # the teacher itself, else the network a wrapper keeps as ``net`` (nd.zoo.ZooTeacher)
    sources = [teacher] + ([teacher.net] if isinstance(getattr(teacher, "net", None), torch.nn.Module) else [])
    error = ""
    for source in sources:
        state = source.state_dict()
        if not state:
            error = error or f"the teacher {type(source).__name__} has no weights to copy"
            continue
        try:
            student.load_state_dict(state)
            return
        except RuntimeError as exc:
            error = error or (
                f"the teacher's weights ({type(source).__name__}) do not fit the student ({type(student).__name__}): "
                f"{str(exc).strip().splitlines()[0]}"
            )
    raise ConfigError(f"{method}'s init='teacher' cannot copy the teacher's weights: {error}; {fix}")
