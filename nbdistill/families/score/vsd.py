r"""``score.vsd``: Variational Score Distillation (Wang et al., "ProlificDreamer", arXiv 2305.16213, Alg. 1).

The particles ``{x_i}`` are samples of a distribution ``q`` that VSD moves towards the teacher's
``p`` by the gradient of ``KL(q_t ‖ p_t)`` over all ``t``:

    ∇_x L_VSD = E_{t, ε}[ w(t) (ε_pretrain(x_t, t) − ε_φ(x_t, t)) ],   w(t) = σ_t²,

(:func:`.losses.particles.vsd_gradient`) where ``ε_φ`` is the noise prediction of a denoiser that
tracks ``q``: trained concurrently on the current particles by the plain denoising loss
(:func:`.teacher_training.denoising_loss` on ``sg(x)``, a fresh ``t`` over the schedule's whole range:
prolific_dreamer2d's ``--use_t_phi``). Here **the student is ε_φ** (any denoiser, e.g.
``MLPDenoiser``; ProlificDreamer uses a LoRA of the teacher, which a 2-D toy does not need), trained at
``lr`` while the particles move at ``particle_lr``. Where the particles are distributed as the data and
``ε_φ`` is exact the gradient vanishes; where they are narrower than the data ``ε_φ`` pushes them apart:
VSD keeps the spread that SDS (``ε_φ`` replaced by the drawn ``ε``) loses.

Differences from prolific_dreamer2d (``model_utils.sds_vsd_grad_diffuser``/``phi_vsd_grad_diffuser``):
every particle is updated every step with its own ``t`` (they draw one ``t`` per step for a few
particles), ``φ`` learns by the family's v-weighted denoising loss (its minimiser, ``E[x | x_t]``, is
the same as their ε-MSE's), no classifier-free guidance (unconditional teacher), and ``φ`` may warm up
alone for ``phi_warmup`` steps first since a small network from scratch, unlike their zero-initialised
LoRA, does not start equal to the teacher.
"""

from __future__ import annotations

import torch

from ...core.registry import HParam, register
from .losses.particles import sds_weight, vsd_gradient
from .particles import PARTICLE_VIEWS, ParticleModule
from .schedule import eps_from_denoiser
from .teacher_training import WEIGHTINGS, denoising_loss


@register("score.vsd", views=PARTICLE_VIEWS)
class VariationalScoreDistillation(ParticleModule):
    """Variational score distillation: particles follow w(t)(ε_pretrain − ε_φ), with the student ε_φ trained on them, and keep their spread (Wang et al., 2023).

    The student network is ε_φ, the fake score of the particles' distribution (a denoiser
    ``forward(x_t, t)``; trained at ``lr`` by the denoising loss on the particles); the particles are
    optimised at ``particle_lr``. For the first ``phi_warmup`` steps only ε_φ trains.
    """

    lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate of the student ε_φ (ProlificDreamer's LoRA: 1e-4)")
    phi_warmup = HParam(int, 0, 0, 1_000_000, help="first steps in which only ε_φ trains (the particles stay)")
    phi_weighting = HParam(str, "snr+1", choices=WEIGHTINGS, help="weighting of ε_φ's denoising loss over t")

    def particle_gradient(self, batch):
        x_t, t, alpha, sigma, _ = self.noisy_particles()
        with torch.no_grad():
            eps_phi = eps_from_denoiser(x_t, self.student(x_t, t), alpha, sigma)
        grad = vsd_gradient(self.teacher_eps(x_t, t, alpha, sigma), eps_phi, sds_weight(alpha, sigma))
        if self.global_step < self.phi_warmup:
            grad = torch.zeros_like(grad)
        x = self.points.detach()
        t_phi = self.noise.t_min + (self.noise.t_max - self.noise.t_min) * torch.rand(len(x), dtype=x.dtype, device=x.device)
        phi_loss = denoising_loss(self.student, x, t_phi, torch.randn_like(x), self.noise, self.phi_weighting)
        return grad, {"phi_loss": phi_loss, "denoising_loss": phi_loss.detach()}
