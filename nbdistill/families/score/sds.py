r"""``score.sds``: Score Distillation Sampling (Poole et al., "DreamFusion: Text-to-3D using 2D Diffusion", 2022, Eq. 3).

Each particle ``x`` (a point standing for DreamFusion's NeRF parameters) follows

    ∇_x L_SDS = E_{t, ε}[ w(t) (ε̂_pretrain(x_t, t) − ε) ],   x_t = α_t x + σ_t ε,  w(t) = σ_t²,

with ``t ~ U[0.02, 0.98]`` (:class:`.particles.ParticleModule`) and the teacher's Jacobian dropped
(:func:`.losses.particles.sds_gradient`). In x0-predictions ``ε̂ − ε = α_t (x − D(x_t, t))/σ_t``:
each step pulls a particle towards the teacher's denoised guess of it, so SDS is mode seeking and
the particles gather on the modes (for a Gaussian ``N(μ, s²)``:
``E[grad] = α_t σ_t³/(α_t² s² + σ_t²) (x − μ)``, a pull to the mean that collapses the spread).
The paper's classifier-free guidance needs a conditional teacher and is left out (unconditional 2-D
teacher); threestudio's and prolific_dreamer2d's SDS use the same ``w(t) = σ_t² = 1 − ᾱ_t``.
"""

from __future__ import annotations

from ...core.registry import register
from .losses.particles import sds_gradient, sds_weight
from .particles import PARTICLE_VIEWS, ParticleModule


@register("score.sds", views=PARTICLE_VIEWS)
class ScoreDistillationSampling(ParticleModule):
    """Score distillation sampling: particles follow the teacher's weighted noise residual w(t)(ε̂(x_t, t) − ε) to its modes (Poole et al., 2022).

    The particles are the method's parameters; the student network is not used by SDS (it trains no
    network: the given student is only checked to be a denoiser of the data's shape, and its ``dim``
    sets the particles'). Expect the particles to collapse onto the modes of the teacher (SDS is mode
    seeking; compare ``score.vsd``).
    """

    def particle_gradient(self, batch):
        x_t, t, alpha, sigma, eps = self.noisy_particles()
        return sds_gradient(self.teacher_eps(x_t, t, alpha, sigma), eps, sds_weight(alpha, sigma)), {}
