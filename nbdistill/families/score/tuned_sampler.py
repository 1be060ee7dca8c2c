r"""``score.tuned_sampler``: a tuned few-step ODE sampler of the teacher, with no distillation.

The baseline of "Hyperparameters are all you need: Using five-step inference for an original diffusion
model to generate images comparable to the latest distillation model" (Li & Bai, arXiv 2510.02390; v3
"F-scheduler: illuminating the free-lunch design space for fast sampling of diffusion models"): leave the
diffusion model as it is and choose the few-step sampler's hyper-parameters well. The paper pairs
a higher-order solver (DPM++ 2M, UniPC) with a hand-designed time schedule that stops before full
denoising (so the β-VAE decoder's KL term handles the rest) and a Free-U stage that rescales the
U-Net's skip connections during part of the schedule; its optimised-step code (``step_optim.py``)
chooses the times by minimising a truncation-error bound.

nbdistill keeps the part that exists for any denoiser, the ``steps``-step time schedule with a solver
choice, and *learns* the schedule instead of designing it by hand: the times are
:func:`.losses.tuned_sampler.schedule_times` of ``steps`` logits (strictly decreasing from ``t_max`` to
``t_min`` for any logits; uniform logits are plain DDIM), tuned by Adam on

    L(θ) = E_z ‖ S_θ(z) − T_K(z) ‖²,

``S_θ`` the ``solver`` along the tuned times with the teacher, ``T_K`` the teacher's ``teacher_steps``-step
DDIM from the same prior noise ``z`` (the reference ODE endpoint), the gradient flowing through the
solver into the times. There is no U-Net here (Free-U does not apply) and no decoder (a sample left
noisy stays noisy), so the schedule always ends at ``t_min``.

The student is not used: it stays frozen (a registered method takes one; the contract's tiny one runs
untouched) and the evaluation samples the *teacher* with the tuned sampler (:meth:`TunedSampler.draw_samples`).
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.module import freeze
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .losses.tuned_sampler import logits_from_times, paired_endpoint_loss, schedule_times
from .samplers import SAMPLERS, check_times, ddim


def parse_times(text: str) -> list[float]:
    """``"0.999, 0.5, 0.001"`` as floats, or a :class:`ConfigError` naming the bad entry."""
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"score.tuned_sampler's times must be comma-separated numbers, got {text!r}: {exc}") from None


@register("score.tuned_sampler", views=SCORE_VIEWS)
class TunedSampler(ScoreModule):
    """A no-distillation baseline: the teacher's own few-step ODE sampler with its time schedule tuned to match the teacher's many-step samples.

    The ``steps`` times are learnable (``schedule_logits``, initialised uniform or from ``times``); the
    student is frozen and unused, and the evaluation samples the teacher with ``solver`` along the tuned times.
    """

    lr = HParam(float, 0.05, 1e-5, 1.0, log=True, help="Adam learning rate of the schedule's logits")
    steps = HParam(int, 4, 1, 64, help="sampling steps of the tuned sampler")
    teacher_steps = HParam(int, 64, 2, 4096, help="DDIM steps of the teacher's reference samples")
    solver = HParam(str, "ddim", choices=tuple(SAMPLERS), help="ODE solver the tuned times drive (heun: 2 evaluations a step)")
    times = HParam(str, "", help="initial times, comma-separated, decreasing from t_max to t_min ('' = uniform)")

    def build_parts(self) -> None:
        super().build_parts()
        if self.teacher is None:
            raise ConfigError("score.tuned_sampler tunes the teacher's sampler: pass teacher=...")
        if self.steps >= self.teacher_steps:
            raise ConfigError(
                f"score.tuned_sampler's steps={self.steps} must be fewer than teacher_steps={self.teacher_steps}: "
                "the tuned sampler imitates the teacher's many-step samples with fewer steps"
            )
        freeze(self.student)
        #: the ``steps`` gap logits of the tuned schedule (:func:`.losses.tuned_sampler.schedule_times`)
        self.schedule_logits = nn.Parameter(self.initial_logits())

    def initial_logits(self) -> torch.Tensor:
        """Zeros (the uniform grid), or the logits of the user's ``times`` after checking them."""
        if not self.times.strip():
            return torch.zeros(self.steps)
        given = parse_times(self.times)
        if len(given) != self.steps + 1:
            raise ConfigError(
                f"score.tuned_sampler's times give {len(given)} times; a {self.steps}-step sampler needs steps + 1 = {self.steps + 1}"
            )
        times = check_times(torch.tensor(given, dtype=torch.float64))
        ends = (self.noise.t_max, self.noise.t_min)
        if abs(given[0] - ends[0]) > 1e-6 or abs(given[-1] - ends[1]) > 1e-6:
            raise ConfigError(
                f"score.tuned_sampler's times must run from the schedule's t_max={ends[0]:g} to t_min={ends[1]:g}, "
                f"got {given[0]:g} ... {given[-1]:g}"
            )
        return logits_from_times(times).to(torch.get_default_dtype())

    @property
    def sampling_steps(self) -> int:
        return self.steps

    def tuned_times(self) -> torch.Tensor:
        """The current ``steps + 1`` times, decreasing from ``t_max`` to ``t_min``."""
        return schedule_times(self.schedule_logits.double(), self.noise.t_max, self.noise.t_min)

    def tuned_sample(self, z: torch.Tensor) -> torch.Tensor:
        """The teacher's ``solver`` along the tuned times from the prior noise ``z`` (differentiable in the times)."""
        return SAMPLERS[self.solver](self.teacher, self.noise, z, self.tuned_times().to(z.dtype))

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        z = torch.randn_like(x)
        with torch.no_grad():
            reference = ddim(
                self.teacher, self.noise, z, self.noise.timesteps(self.teacher_steps, dtype=x.dtype, device=x.device)
            )
        loss = paired_endpoint_loss(self.tuned_sample(z), reference)
        return {"loss": loss, "t_1": self.tuned_times()[1].detach()}

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The teacher sampled by the tuned sampler from the prior noise of ``generator``."""
        z = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        return self.tuned_sample(z)
