r"""``score.eg4d``: explicit generation, then fitting: the teacher's samples made once, a one-step student regressed on them.

EG4D (Sun et al., "EG4D: Explicit Generation of 4D Object without Score Distillation", arXiv 2405.18132)
argues against score distillation sampling for 4-D assets: SDS's gradients bring over-saturation
and the Janus problem, so EG4D first *generates* the missing views explicitly with the diffusion
models (multi-view videos from SVD and SV3D), then *fits* its 4-D Gaussian-splatting representation to
those fixed images by an ordinary reconstruction loss. nbdistill's 2-D version keeps the two stages:

1. explicit generation, once, before the first step (seeded by ``pair_seed``): ``pairs`` prior noises
   ``z_i ~ N(0, I)`` and the teacher's ``teacher_steps``-step DDIM endpoints ``x_i = T_K(z_i)`` (the pairs
   are exact teacher ODE endpoints, :meth:`ExplicitGenerationFit.teacher_pairs`);
2. fitting: the student as a one-step generator ``G_θ(z) = D_θ(z, t_max)`` (:meth:`.base.ScoreModule.generate`)
   regressed on the fixed pairs, ``L = mean_i ‖G_θ(z_i) − x_i‖²`` over a random minibatch of them.

The fitting is knowledge distillation of the teacher's ODE map (Luhman & Luhman, "Knowledge Distillation
in Iterative Generative Models for Improved Sampling Speed", 2021): the student sees the teacher's
*outputs*, never its score, which is EG4D's point, and it has the other students' architecture and
one-step budget with the same teacher, so its gap to them measures what the score-based learning signal
adds. (The data batches only set the minibatch size, device and dtype.)
"""

from __future__ import annotations

import torch

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .samplers import ddim


@register("score.eg4d", views=SCORE_VIEWS)
class ExplicitGenerationFit(ScoreModule):
    """A no-distillation baseline: generate a fixed set of teacher samples once, then fit a one-step student to the (noise, sample) pairs by regression (EG4D; Luhman & Luhman, 2021).

    The pairs are made before the first training step (``teacher_pairs``), seeded by ``pair_seed``, and
    are the same on a resumed run; each step regresses ``student(z, t_max)`` on a random minibatch of them.
    """

    teacher_steps = HParam(int, 64, 2, 4096, help="DDIM steps of the teacher that generates the pairs")
    pairs = HParam(int, 2000, 10, 1_000_000, help="number of (noise, teacher sample) pairs generated once")
    pair_seed = HParam(int, 0, 0, 2**31 - 1, help="seed of the pairs' prior noise")

    def build_parts(self) -> None:
        super().build_parts()
        if self.teacher is None:
            raise ConfigError("score.eg4d generates its training pairs with the teacher: pass teacher=...")
        #: the (noise, teacher endpoint) pairs, made at the first training step from the data's point shape
        self._pairs: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def teacher_pairs(
        self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32, device=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, T_K(z))``: ``pairs`` prior noises of point shape ``shape`` drawn on the CPU from ``pair_seed`` and
        their teacher ``teacher_steps``-step DDIM endpoints."""
        z = torch.randn(self.pairs, *shape, generator=torch.Generator().manual_seed(self.pair_seed), dtype=dtype).to(device)
        times = self.noise.timesteps(self.teacher_steps, dtype=dtype, device=device)
        was_training = self.teacher.training
        self.teacher.eval()
        endpoints = torch.cat([ddim(self.teacher, self.noise, chunk, times) for chunk in z.split(4096)])
        self.teacher.train(was_training)
        return z, endpoints

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self._pairs is None:
            self._pairs = self.teacher_pairs(tuple(x.shape[1:]), x.dtype, x.device)
        z_all, x_all = self._pairs
        index = torch.randint(len(z_all), (x.shape[0],), device=x.device)
        z, target = z_all[index], x_all[index]
        loss = (self.generate(z) - target).flatten(1).pow(2).sum(1).mean()
        return {"loss": loss}
