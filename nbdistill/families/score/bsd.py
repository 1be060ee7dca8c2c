r"""``score.bsd``: Balanced Score Distillation (Huang et al., "PlacidDreamer", arXiv 2407.13976).

Two guidances of a particle's noisy copy ``x_t = α_t x + σ_t ε`` (PlacidDreamer's ``train_step_BSD``,
``guidance/sd_utils.py``):

    c = λ_c (ε_cond(x_t, t) − ε_uncond(x_t, t)),   d = ε_uncond(x_t, t),
    α = clip(⟨d − c, d⟩ / ‖d − c‖², 0, 1)  (per particle),   ∇_x L_BSD = sqrt(ᾱ_t) (α c + (1 − α) d),

``α c + (1 − α) d`` being the point of the segment ``[c, d]`` nearest 0 (the min-norm direction of
two-objective MGDA: a step along it decreases both); :func:`.losses.particles.bsd_gradient`, with the
guard ``α = 0`` where ``c = d``. As in the paper's code ``d`` has no ``−ε`` term (in expectation over
``ε`` it is still SDS's residual, since ``E[ε] = 0``) and ``λ_c = 15`` (their hard-coded value).

**What "cond" is on a 2-D teacher.** The condition is a class ``target_class`` of the data:

- a class-conditional exact teacher (an :class:`.exact.ExactDenoiser` over a mixture with classes)
  gives ``ε_cond = ε(x_t, t, y = target_class)`` itself;
- any other (unconditional) teacher is guided by classifier guidance with the exact noisy classifier
  of the current batch's labelled points: ``ε_cond − ε_uncond = −σ_t ∇ log p(y | x_t) = ε̂_y − ε̂``, the
  noise predictions of the empirical distribution of the batch's class-``y`` points and of all of them
  (:func:`.losses.particles.empirical_denoiser`). Where the class is already certain (``p(y | x_t) ≈ 1``),
  ``c ≈ 0`` and so is the min-norm point of ``[c, d]`` (``α → 1``): the particle nearly rests, so BSD
  brings particles into the class's region more than onto its data (a batch without a class-``y``
  point gives ``c = 0`` and no move).

So the particles are drawn to the ``target_class`` part of the data (one moon of ``TwoMoons``) by
``c`` and to the teacher's modes by ``d``; ``α`` (logged as ``train/alpha``, with the shares clipped
to 0 and 1, view ``bsd_alpha``) says which guidance each step follows. The student network is not
used (BSD trains no network).
"""

from __future__ import annotations

import torch

from ...core.batches import as_pair
from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .exact import ExactDenoiser
from .losses.particles import bsd_gradient, empirical_denoiser
from .particles import PARTICLE_VIEWS, ParticleModule
from .schedule import eps_from_denoiser


@register("score.bsd", views=PARTICLE_VIEWS + ("bsd_alpha",))
class BalancedScoreDistillation(ParticleModule):
    """Balanced score distillation: particles follow the min-norm mix α c + (1 − α) d of class guidance c and denoising guidance d (Huang et al., 2024).

    The condition is the data class ``target_class`` (a class-conditional exact teacher's own, else
    classifier guidance by the batch's labelled points, see the module docstring). The student network
    is not used by BSD (it trains no network: the given student is only checked to be a denoiser of the
    data's shape, and its ``dim`` sets the particles').
    """

    lambda_c = HParam(float, 15.0, 0.0, 1000.0, help="scale λ_c of the classifier guidance c (PlacidDreamer: 15)")
    target_class = HParam(int, 0, 0, 1_000_000, help="the data class the particles are conditioned on")

    def build_parts(self) -> None:
        super().build_parts()
        classes = self._teacher_classes()
        if classes is not None and self.target_class >= classes:
            raise ConfigError(
                f"score.bsd's target_class={self.target_class} is not a class of the teacher's mixture (classes 0..{classes - 1})"
            )

    def _teacher_classes(self) -> int | None:
        """The class count of a class-conditional exact teacher, else None (the batch's labels condition)."""
        teacher = self.teacher
        if isinstance(teacher, ExactDenoiser) and teacher.mixture.classes is not None:
            return teacher.mixture.num_classes
        return None

    def check_data(self, data) -> None:
        super().check_data(data)
        if self._teacher_classes() is not None:
            return
        count = getattr(data, "label_classes", None) or getattr(data, "num_classes", None)
        if isinstance(count, int) and self.target_class >= count:
            raise ConfigError(
                f"score.bsd conditions on the data class target_class={self.target_class}, but the data has classes 0..{count - 1}"
            )

    @torch.no_grad()
    def cond_minus_uncond(self, batch, x_t, t, alpha, sigma) -> torch.Tensor:
        """``ε_cond − ε_uncond`` at the particles' noisy copies (see the module docstring)."""
        if self._teacher_classes() is not None:
            y = torch.full((len(x_t),), self.target_class, dtype=torch.long, device=x_t.device)
            return eps_from_denoiser(x_t, self.teacher(x_t, t, y=y), alpha, sigma) - self.teacher_eps(x_t, t, alpha, sigma)
        pair = as_pair(batch)
        x, y = (pair[0], pair[1] if len(pair) > 1 else None) if isinstance(pair, (list, tuple)) else (pair, None)
        x = x.reshape(len(x), -1).to(x_t)
        chosen = x[torch.as_tensor(y).reshape(-1).to(x.device) == self.target_class] if y is not None else x[:0]
        if len(chosen) == 0:
            return torch.zeros_like(x_t)
        eps_y = eps_from_denoiser(x_t, empirical_denoiser(x_t, alpha, sigma, chosen), alpha, sigma)
        return eps_y - eps_from_denoiser(x_t, empirical_denoiser(x_t, alpha, sigma, x), alpha, sigma)

    def particle_gradient(self, batch):
        x_t, t, alpha, sigma, _ = self.noisy_particles()
        d = self.teacher_eps(x_t, t, alpha, sigma)
        c = self.lambda_c * self.cond_minus_uncond(batch, x_t, t, alpha, sigma)
        grad, a = bsd_gradient(c, d, alpha)
        terms = {"alpha": a.mean(), "alpha_at_0": (a <= 0).float().mean(), "alpha_at_1": (a >= 1).float().mean()}
        return grad, terms
