r"""``score.boot``: BOOT, data-free distillation by bootstrapping (Gu et al., arXiv 2306.05544).

The student is a generator ``g_θ(ε, t)`` that predicts, from pure noise ``ε`` alone, the signal
``y_t = (x_t − σ_t ε)/α_t`` of the teacher's DDIM trajectory started at ``ε``; no data point is used (a
batch gives only the shape, dtype and device of the noise; the evaluation still compares the samples with
the data). Each training step draws ``ε ~ N(0, I)``, ``t ~ U[t_min + δ, t_max]`` and ``s = t − δ``, and
minimises (the formulas in :mod:`.losses.boot`)

    L = ‖g_θ(ε, s) − sg(y_s)‖² / (λ_t − λ_s)²  +  w_BC ‖g_θ(ε, T) − f_φ(ε, T)‖²,
    y_s = f + e^{λ_s − λ_t} (ŷ_t − f),   ŷ_t = g_θ(ε, t),   f = f_φ(α_t ŷ_t + σ_t ε, t),

with BOOT's ``λ = −log(α/σ)`` and ``T = t_max``. One-step sampling is ``g_θ(ε, t_min)``.

The student network is an nbdistill denoiser ``student(x, τ)``; BOOT's generator is
``g_θ(ε, t) = student(ε, τ(t))`` with ``τ(t) = (1 + t)/2``: the first argument is the noise ``ε`` (not a
noisy point), the second a *time code* in ``[½, 1]`` rather than a noise level. The remapping keeps the
default v-parametrised :class:`~nbdistill.models.MLPDenoiser` usable: its output
``cos(πτ/2)·x − sin(πτ/2)·F`` is tied to the input ``ε`` as ``τ → 0`` (``D → x_t``), which would force
``g_θ(ε, t_min) ≈ ε``; for ``τ ≥ ½`` the network term has weight ``≥ 0.7`` and ``g`` is free at every ``t``.
BOOT's networks predict the signal directly (no skip term; its teachers are signal predictors), where
``τ = t`` would do.
"""

from __future__ import annotations

import torch

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .losses.boot import bootstrap_loss, boundary_loss, signal_ddim_step, state_from_signal


def student_time(t: torch.Tensor) -> torch.Tensor:
    """The time code ``τ(t) = (1 + t)/2`` the student network reads for BOOT's time ``t`` (module docstring)."""
    return 0.5 * (1.0 + t)


@register("score.boot", views=SCORE_VIEWS)
class Boot(ScoreModule):
    """BOOT: a one-step generator that predicts the teacher's signal trajectory from pure noise, trained without data by bootstrapping between consecutive times (Gu et al., 2023).

    ``delta`` is the gap ``t − s`` between the two times of a bootstrap step; ``boundary_weight`` the weight
    of the boundary term at ``t = T``. The batches' values are never read: the method is data-free.
    """

    delta = HParam(float, 0.05, 1e-3, 0.5, help="time gap t - s between the two consecutive times of a bootstrap step")
    boundary_weight = HParam(float, 1.0, 0.0, 100.0, help="weight of the boundary term ||g(eps, T) - teacher(eps, T)||^2")

    def build_parts(self) -> None:
        super().build_parts()
        span = self.noise.t_max - self.noise.t_min
        if self.delta >= span:
            raise ConfigError(
                f"score.boot's delta={self.delta} must be below the schedule's time span t_max - t_min = {span:g}: "
                "s = t - delta must stay in [t_min, t_max]"
            )
        if self.teacher is None:
            raise ConfigError("score.boot distils a teacher denoiser: pass teacher=... (e.g. nd.zoo.teacher('moons-denoiser'))")

    def g(self, eps: torch.Tensor, t) -> torch.Tensor:
        """BOOT's generator ``g_θ(ε, t) = student(ε, τ(t))``: the predicted signal ``y_t`` of the noise ``ε``."""
        t = torch.as_tensor(t, dtype=eps.dtype, device=eps.device).expand(eps.shape[0])
        return self.student(eps, student_time(t))

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """BOOT's ``λ_t = −log(α_t/σ_t)`` (the negative of nbdistill's log-SNR)."""
        return -self.noise.log_snr(t)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        b, like = x.shape[0], dict(dtype=x.dtype, device=x.device)  # only the batch's shape is read: data-free
        eps = torch.randn(x.shape, **like)
        lo, hi = self.noise.t_min + self.delta, self.noise.t_max
        t = lo + (hi - lo) * torch.rand(b, **like)
        s = t - self.delta
        lam_t, lam_s = self.lam(t), self.lam(s)
        with torch.no_grad():
            y_t = self.g(eps, t)
            f = self.teacher(state_from_signal(y_t, eps, self.noise.alpha(t), self.noise.sigma(t)), t)
            target = signal_ddim_step(y_t, f, lam_t, lam_s)
            t_end = torch.full((b,), self.noise.t_max, **like)
            teacher_end = self.teacher(eps, t_end)
        terms = {"bootstrap": bootstrap_loss(self.g(eps, s), target, lam_t, lam_s)}
        terms["boundary"] = boundary_loss(self.g(eps, t_end), teacher_end)
        terms["loss"] = terms["bootstrap"] + self.boundary_weight * terms["boundary"]
        return terms

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """One-step sampling ``g_θ(z, t_min)``: the signal at the data end is the sample."""
        return self.g(z, self.noise.t_min)

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        eps = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        return self.generate(eps)
