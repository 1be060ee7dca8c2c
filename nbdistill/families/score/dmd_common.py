r"""What DMD and DMD2 share: a one-step (or few-step) generator, a trainable fake score, the distribution-matching step.

The generator is the student as a generator ``G_θ(z) = D_θ(z, t_max)`` (:meth:`.base.ScoreModule.generate`;
DMD2's multi-step generator re-noises its own x0-prediction with fresh noise between steps, see
:meth:`DistributionMatchingModule.generator_chain`). Each training step (Yin et al., CVPR 2024, Alg. 1):

- the distribution-matching term ``L_DM = ½ · mean (x − sg(x − grad))²`` with
  ``grad = (μ_fake(x_t, t) − μ_real(x_t, t)) / mean_d |x − μ_real(x_t, t)|`` at ``x_t = α_t x + σ_t ε``,
  ``t ~ U[t_low, t_high]`` (:func:`.losses.dmd.dmd_gradient`, :func:`.losses.dmd.dmd_loss`); it reaches the
  generator only (both denoisers are evaluated without gradients);
- the fake score ``μ_fake`` (:attr:`DistributionMatchingModule.fake_score`) learns the generator's
  distribution by the ordinary denoising loss on ``sg(x)`` (:func:`.teacher_training.denoising_loss`,
  ``t ~ U[t_min, t_max]``); it reaches the fake score only.

The terms are summed and taken by the one Adam of the module: their gradients touch disjoint parameters,
so one step of the sum is one generator step and one fake-score step (the official code steps the
generator first and trains the fake score on the updated generator's samples; here both see the same
batch, the difference of one step is below the noise of a toy run). At every validation the real and fake
score fields are written for the ``score_fields`` view (:func:`.fields_views.write_score_fields`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam
from .base import ScoreModule
from .fields_views import write_score_fields
from .losses.dmd import dmd_gradient, dmd_loss
from .progressive import copy_teacher_weights
from .schedule import per_sample
from .teacher_training import denoising_loss

#: Where the fake score starts (``fake_init``): "auto" takes the teacher's network when it has weights, else the student's.
FAKE_INITS = ("auto", "teacher", "student")


def teacher_network(teacher: nn.Module | None) -> nn.Module | None:
    """The teacher's trainable network: ``teacher.net`` for a shipped teacher (``nd.zoo.ZooTeacher``, which only
    forwards to it), else the teacher itself; ``None`` when it has no weights (the exact mixture's
    :class:`~.exact.ExactDenoiser`)."""
    from ...zoo import ZooTeacher

    if teacher is None:
        return None
    net = teacher.net if isinstance(teacher, ZooTeacher) else teacher
    return net if any(True for _ in net.parameters()) else None


def make_fake_score(method: str, fake_init: str, teacher: nn.Module | None, student: nn.Module) -> nn.Module:
    """A trainable fake-score denoiser: a copy of the teacher's network (:func:`teacher_network`; ``fake_init``
    ``"teacher"``, or ``"auto"`` when the teacher has one), else of the student; a :class:`ConfigError` when
    ``"teacher"`` is asked of a teacher without weights."""
    source = teacher_network(teacher)
    if fake_init == "teacher" and source is None:
        raise ConfigError(
            f"{method}'s fake_init='teacher' copies the teacher's network, but {type(teacher).__name__} "
            "has no weights (an exact teacher): use fake_init='student' or 'auto'"
        )
    if fake_init == "student" or source is None:
        source = student
    return copy.deepcopy(source).requires_grad_(True).train()


class DistributionMatchingModule(ScoreModule):
    """Base of the DMD methods: a generator (the student), a trainable fake score, the DMD gradient."""

    t_low = HParam(float, 0.02, 0.0, 1.0, help="lowest time of the distribution-matching noise (DMD's T_min = 0.02 T)")
    t_high = HParam(float, 0.98, 0.0, 1.0, help="highest time of the distribution-matching noise (DMD's T_max = 0.98 T)")
    init = HParam(str, "given", choices=("given", "teacher"), help="start the generator from its own weights or the teacher's")
    fake_init = HParam(
        str, "auto", choices=FAKE_INITS, help="the fake score starts as a copy of the teacher's network, or of the student's"
    )

    def build_parts(self) -> None:
        super().build_parts()
        if not self.t_low < self.t_high:
            raise ConfigError(f"{self.method_name} needs t_low < t_high, got t_low={self.t_low}, t_high={self.t_high}")
        if self.teacher is None:
            raise ConfigError(f"{self.method_name} distils a teacher denoiser (the real score μ_real): pass teacher=...")
        if self.init == "teacher":
            copy_teacher_weights(self.teacher, self.student, self.method_name)
        #: the fake score μ_fake: a trainable denoiser of the generator's distribution
        self.fake_score = make_fake_score(self.method_name, self.fake_init, self.teacher, self.student)

    # -- the generator -------------------------------------------------------------------------------
    def generator_times(self, steps: int, dtype: torch.dtype, device) -> torch.Tensor:
        """The ``steps`` times the generator denoises at: the first ``steps`` of the schedule's grid, ``t_max`` first."""
        return self.noise.timesteps(steps, dtype=dtype, device=device)[:steps]

    def generator_chain(self, z: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ``steps``-step generator from the prior noise ``z``: ``x0 = G(x_{t_i}, t_i)``, then
        ``x_{t_{i+1}} = α x0 + σ ε`` with fresh ``ε`` (DMD2's sampling, as a consistency model's); one step is
        :meth:`generate`. Gradients flow as the caller allows."""
        if steps == 1:
            return self.generate(z)
        times = self.generator_times(steps, z.dtype, z.device)
        x = z
        for i, t in enumerate(times):
            x0 = self.student(x, t.expand(len(z)))
            if i + 1 < steps:
                eps = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
                x = self.noise.alpha(times[i + 1]) * x0 + self.noise.sigma(times[i + 1]) * eps
        return x0

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The generator's samples from the prior noise of ``generator`` (:meth:`generator_chain` with :attr:`sampling_steps`)."""
        z = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        return self.generator_chain(z, int(self.sampling_steps), generator)

    # -- the two players' terms --------------------------------------------------------------------------
    def dm_times(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """``t ~ U[t_low, t_high]``, kept inside the schedule's ``[t_min, t_max]``."""
        t = self.t_low + (self.t_high - self.t_low) * torch.rand(n, dtype=like.dtype, device=like.device)
        return t.clamp(self.noise.t_min, self.noise.t_max)

    def noised(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = α_t x + σ_t ε`` with fresh ``ε``."""
        return per_sample(self.noise.alpha(t), x) * x + per_sample(self.noise.sigma(t), x) * torch.randn_like(x)

    def dm_term(self, x: torch.Tensor, real: nn.Module | None = None) -> torch.Tensor:
        """``L_DM`` of the generated batch ``x`` (see the module docstring) with ``real`` as the real score (the
        teacher by default; DisBack passes its recorded ``s^k``): its gradient reaches ``x`` only."""
        real = self.teacher if real is None else real
        t = self.dm_times(len(x), x)
        with torch.no_grad():
            x_t = self.noised(x.detach(), t)
            grad = dmd_gradient(x, real(x_t, t), self.fake_score(x_t, t))
        return dmd_loss(x, grad)

    def fake_term(self, x: torch.Tensor) -> torch.Tensor:
        """The fake score's denoising loss on ``sg(x)``, ``t ~ U[t_min, t_max]``."""
        x = x.detach()
        t = self.noise.t_min + (self.noise.t_max - self.noise.t_min) * torch.rand(len(x), dtype=x.dtype, device=x.device)
        return denoising_loss(self.fake_score, x, t, torch.randn_like(x), self.noise)

    # -- events ------------------------------------------------------------------------------------------
    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:
            write_score_fields(self._run_writer(), self, self.global_step)
