r"""``score.sid``: Score identity Distillation (Zhou et al., ICML 2024, arXiv 2404.04057, Alg. 1).

A one-step generator ``y = G_θ(z) = D_θ(z, t_max)`` (:meth:`.base.ScoreModule.generate`) and a fake-score
denoiser ``μ_ψ`` of the generator's distribution train together. Each step draws ``z ~ N(0, I)`` and

- the fake score fits the generator's points by the ordinary denoising loss on ``sg(y)``
  (:func:`.teacher_training.denoising_loss`, ``t ~ U[t_min, t_max]``, weight ``SNR_t + 1``);
- the generator minimises SiD's loss (:func:`.losses.sid.sid_generator_loss`)
  ``L_G = (y_real − y_fake)·((y_real − y) − α (y_real − y_fake)) / w`` at ``y_t = α_t y + σ_t ε`` with
  ``t ~ U[t_low, t_high]``, ``y_real = μ_teacher(y_t, t)``, ``y_fake = μ_ψ(y_t, t)``,
  ``w = sg(mean_d |y − y_real|) ≥ 1e-5``; its gradient reaches ``y`` through both networks' inputs.

From SiD's EDM code (mingyuanzhou/SiD ``training/sid_loss.py``, ``sid_training_loop.py``), adapted to
nbdistill's VP schedule (``x_t = α_t x + σ_t ε``, ``t`` in ``[0, 1]``; EDM's ``σ`` is ``σ_t/α_t``):

- SiD draws ``u ~ U[0, tmax/1000]`` (tmax = 800) and maps it through the Karras ρ-schedule to
  ``σ ∈ [0.002, ≈24]``; here ``t ~ U[t_low, t_high]`` uniform in time (``t_high = 0.8``, SiD's
  ``tmax/1000``, reaches EDM ``σ = tan(0.4π) ≈ 3.1`` on the cosine schedule, ample for unit-scale 2-D data);
- SiD's fake-score loss weights ``λ(σ) = (σ² + σ_d²)/(σ σ_d)²`` with ``log σ ~ N(−1.2, 1.2²)``; here the
  family's ``SNR_t + 1`` weight (EDM's ``λ`` with ``σ_d = 1``: ``1/σ_EDM² = SNR_t``), ``t`` uniform;
- SiD feeds its generator ``init_sigma · z`` at ``σ = 2.5``; here ``G(z) = D_θ(z, t_max)``, the one-step
  DDIM generator every one-step method and the evaluation use;
- SiD alternates a fake-score Adam step and a generator Adam step on fresh samples, both at
  ``lr = 1e-5``; here one Adam steps both at once on one batch of generated points, the two losses kept
  apart (the generator's loss holds the fake score's weights fixed, the fake score learns on ``sg(y)``),
  the fake score at ``fake_lr_ratio × lr`` (default 10, ``lr`` 1e-4): on two moons with equal rates the
  fake score lags the generator and the samples oscillate or diverge (energy distance 0.58 -> 1.8 in
  500 steps from the teacher's weights, α = 1.2), with 10× it reaches 0.013 in 200 steps (as DMD2's
  several fake steps per generator step do).
"""

from __future__ import annotations

import torch

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .dmd_common import FAKE_INITS, make_fake_score
from .fields_views import write_score_fields
from .losses.sid import sid_generator_loss
from .progressive import copy_teacher_weights
from .teacher_training import denoising_loss


def call_with_fixed_weights(net: torch.nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """``net(*args)`` whose gradient reaches the inputs but not ``net``'s weights (SiD's generator step
    holds the fake score fixed while differentiating through its input)."""
    fixed = {name: p.detach() for name, p in net.named_parameters()}
    return torch.func.functional_call(net, fixed, args)


def two_rate_adam(module: torch.nn.Module, fake: torch.nn.Module, ratio: float) -> torch.optim.Optimizer:
    """One Adam over ``module``'s trainable weights: ``fake``'s at ``ratio × module.lr``, the others at ``module.lr``."""
    fake_ids = {id(p) for p in fake.parameters()}
    others = [p for p in module.parameters() if p.requires_grad and id(p) not in fake_ids]
    groups = [{"params": others, "lr": module.lr}, {"params": list(fake.parameters()), "lr": module.lr * ratio}]
    return torch.optim.Adam(groups, lr=module.lr, weight_decay=module.weight_decay)


@register("score.sid", views=SCORE_VIEWS + ("score_fields",))
class ScoreIdentityDistillation(ScoreModule):
    """Score identity Distillation: a one-step generator trained by SiD's score-identity loss against a fake score fitted to its samples (Zhou et al., 2024).

    ``alpha`` weighs SiD's two terms (``L2 − α·L1``; the paper's runs use 1.2; 0 leaves a DMD-like
    gradient). The generator loss ``train/generator`` oscillates around 0 and is no progress signal
    (SiD issue #6): watch the sample metrics (``score_metrics``) and the fields (``score_fields``).
    """

    lr = HParam(float, 1e-4, 1e-6, 1.0, log=True, help="Adam learning rate of the generator")
    fake_lr_ratio = HParam(float, 10.0, 0.1, 100.0, log=True, help="the fake score's learning rate over the generator's")
    alpha = HParam(float, 1.2, 0.0, 2.0, help="SiD's α: the generator loss is L2 − α·L1 (1.2 in the paper)")
    t_low = HParam(float, 0.02, 0.001, 0.99, help="smallest time t of the generator loss's noisy copy")
    t_high = HParam(float, 0.8, 0.01, 1.0, help="largest time t of the generator loss's noisy copy (SiD's tmax/1000)")
    init = HParam(
        str, "given", choices=("given", "teacher"), help="start the generator from its own weights or the teacher's (SiD's start)"
    )
    fake_init = HParam(
        str,
        "auto",
        choices=FAKE_INITS,
        help="copy the fake score from the teacher's network (auto: if it has one) or the student",
    )

    def build_parts(self) -> None:
        super().build_parts()
        if self.teacher is None:
            raise ConfigError("score.sid distils a teacher: pass teacher=... (a denoiser forward(x_t, t) -> x0)")
        if not self.t_low < self.t_high:
            raise ConfigError(f"score.sid's t_low must be below t_high, got t_low={self.t_low}, t_high={self.t_high}")
        if self.init == "teacher":
            copy_teacher_weights(self.teacher, self.student, self.method_name)
        #: the fake-score denoiser μ_ψ of the generator's distribution (read by the ``score_fields`` view)
        self.fake_score = make_fake_score(self.method_name, self.fake_init, self.teacher, self.student)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        b = x.shape[0]
        y = self.generate(torch.randn_like(x))
        # the fake score learns the generator's current points (no gradient to the generator)
        t_fake = self.noise.t_min + (self.noise.t_max - self.noise.t_min) * torch.rand(b, dtype=x.dtype, device=x.device)
        fake_loss = denoising_loss(self.fake_score, y.detach(), t_fake, torch.randn_like(x), self.noise)
        # the generator: SiD's loss at a noisy copy, through both networks' inputs, their weights fixed
        t = self.t_low + (self.t_high - self.t_low) * torch.rand(b, dtype=x.dtype, device=x.device)
        t = self.noise.clamp(t).to(x.dtype)
        view = (-1,) + (1,) * (x.dim() - 1)
        y_t = self.noise.alpha(t).reshape(view) * y + self.noise.sigma(t).reshape(view) * torch.randn_like(y)
        y_real = self.teacher(y_t, t)
        y_fake = call_with_fixed_weights(self.fake_score, y_t, t)
        generator_loss = sid_generator_loss(y, y_real, y_fake, self.alpha)
        return {"generator": generator_loss, "fake_score": fake_loss, "loss": generator_loss + fake_loss}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return two_rate_adam(self, self.fake_score, self.fake_lr_ratio)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:
            write_score_fields(self._run_writer(), self, self.global_step)
