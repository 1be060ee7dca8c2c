r"""``ParticleModule``: the base of the particle methods ``score.sds``, ``score.vsd`` and ``score.bsd``.

What is optimised is not a network but a set of ``particles`` points ``{x_i}`` (an ``nn.Parameter``
``points`` ``[particles, d]``, drawn from ``N(0, I)`` with ``particle_seed``), the 2-D stand-in for
the parameters of DreamFusion's NeRF. At every step each particle is noised once,
``x_t = α_t x + σ_t ε`` with ``t ~ U[t_lo, t_hi]`` (DreamFusion's and ProlificDreamer's
``U[0.02, 0.98]``) and ``ε ~ N(0, I)``; the method computes a specified gradient ``grad`` per
particle (:mod:`.losses.particles`) and applies it with the surrogate ``½‖x − sg(x − grad)‖²``
(:func:`.losses.dmd.dmd_loss`; its gradient is ``grad / numel``, which Adam's per-coordinate scaling
makes immaterial). One Adam holds two groups: the particles at ``particle_lr`` (ProlificDreamer's
0.03) and the student's weights at ``lr``.

The evaluation measures the particles themselves (:meth:`draw_samples`), and the ``score_particles``
view shows them move: a snapshot of (at most :data:`.particles_views.MAX_PARTICLES`) particles every
``snapshot_every`` steps.
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam
from .base import SCORE_VIEWS, ScoreModule
from .losses.dmd import dmd_loss
from .particles_views import write_particles
from .schedule import eps_from_denoiser

#: The views of every particle method.
PARTICLE_VIEWS = SCORE_VIEWS + ("score_particles",)


class ParticleModule(ScoreModule):
    """Base of the particle methods: a set of points optimised by a specified score-distillation gradient."""

    particles = HParam(int, 256, 2, 100_000, help="number of particles (the points being optimised)")
    particle_lr = HParam(float, 0.03, 1e-5, 1.0, log=True, help="Adam learning rate of the particles (ProlificDreamer: 0.03)")
    particle_seed = HParam(int, 0, 0, 2**31 - 1, help="seed of the particles' N(0, I) initial positions")
    t_lo = HParam(float, 0.02, 0.0, 1.0, help="smallest diffusion time drawn for a particle's noisy copy")
    t_hi = HParam(float, 0.98, 0.0, 1.0, help="largest diffusion time drawn for a particle's noisy copy")
    snapshot_every = HParam(
        int, 25, 1, 1_000_000, help="training steps between two snapshots of the particles (score_particles view)"
    )

    def build_parts(self) -> None:
        super().build_parts()
        lo, hi = max(self.t_lo, self.noise.t_min), min(self.t_hi, self.noise.t_max)
        if not lo < hi:
            raise ConfigError(
                f"{self.method_name}'s times need t_lo < t_hi inside the schedule's [{self.noise.t_min:g}, {self.noise.t_max:g}], "
                f"got t_lo={self.t_lo:g}, t_hi={self.t_hi:g}; the papers draw t ~ U[0.02, 0.98]"
            )
        #: the drawn times' range ``[t_lo, t_hi]`` clipped to the schedule's
        self.time_range = (lo, hi)
        dim = getattr(self.student, "dim", 2)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            dim = 2
        start = torch.randn(self.particles, dim, generator=torch.Generator().manual_seed(self.particle_seed))
        #: the particles ``[particles, d]``, the parameters this method optimises
        self.points = nn.Parameter(start)

    def check_data(self, data) -> None:
        if self.teacher is None:
            raise ConfigError(f"{self.method_name} distils a pretrained diffusion teacher into particles: pass teacher=...")
        points = getattr(data, "points", None)
        if callable(points):
            shape = tuple(points("train").shape[1:])
            if shape != tuple(self.points.shape[1:]):
                raise ConfigError(
                    f"{self.method_name}'s particles have shape {list(self.points.shape[1:])} (the student's dim) but the data's "
                    f"points have shape {list(shape)}; give a student denoiser of the data's dimension"
                )

    # -- one step ------------------------------------------------------------------------------------
    def noisy_particles(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, t, α_t, σ_t, ε)`` for the particles: one ``t ~ U[t_lo, t_hi]`` and one ``ε ~ N(0, I)`` each."""
        x = self.points
        lo, hi = self.time_range
        t = lo + (hi - lo) * torch.rand(len(x), dtype=x.dtype, device=x.device)
        eps = torch.randn_like(x)
        alpha, sigma = self.noise.alpha(t), self.noise.sigma(t)
        x_t = alpha[:, None] * x.detach() + sigma[:, None] * eps
        return x_t, t, alpha, sigma, eps

    @torch.no_grad()
    def teacher_eps(self, x_t: torch.Tensor, t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's noise prediction ``ε_pretrain(x_t, t)``."""
        return eps_from_denoiser(x_t, self.teacher(x_t, t), alpha, sigma)

    def particle_gradient(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The method's specified gradient ``[particles, d]`` and its extra terms (a loss of its own networks, logs)."""
        raise NotImplementedError

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        grad, terms = self.particle_gradient(batch)
        particle_loss = dmd_loss(self.points, grad)
        total = particle_loss + terms.pop("phi_loss", 0.0)
        return {"loss": total, "particle_loss": particle_loss, "grad_norm": grad.norm(dim=1).mean(), **terms}

    # -- optimisation: the particles and the student at their own rates -----------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        others = [p for name, p in self.named_parameters() if p.requires_grad and name != "points"]
        groups = [{"params": [self.points], "lr": self.particle_lr, "weight_decay": 0.0}]
        if others:
            groups.append({"params": others, "lr": self.lr, "weight_decay": self.weight_decay})
        return torch.optim.Adam(groups, lr=self.lr)

    # -- the evaluation measures the particles ------------------------------------------------------------
    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """``n`` of the particles: evenly spaced ones when ``n <= particles``, all of them repeated otherwise
        (``generator`` is unused: the particles are the samples)."""
        count = len(self.points)
        index = torch.linspace(0, count - 1, n).round().long() if n <= count else torch.arange(n) % count
        return self.points.detach()[index.to(self.points.device)].to(dtype).reshape(n, *shape)

    # -- the particles' moves, at a bounded rate ----------------------------------------------------------
    def on_train_start(self) -> None:
        super().on_train_start()
        self._snapshot()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.global_step % self.snapshot_every == 0:  # the steps taken so far, this batch's included
            self._snapshot()

    def _snapshot(self) -> None:
        writer = self._run_writer()
        if writer is not None and self.points.shape[1] == 2:
            write_particles(writer, self.points, step=self.global_step)
