r"""``score.dmd``: Distribution Matching Distillation (Yin et al., "One-step Diffusion with Distribution Matching
Distillation", CVPR 2024, Alg. 1).

A one-step generator ``G_θ(z)`` (the student, :meth:`.base.ScoreModule.generate`) is trained on

    L_G = L_DM(concat(x, x_ref)) + λ_reg · mean (G(z_ref) − y_ref)²,   x = G(z), x_ref = G(z_ref),

where ``L_DM`` pushes the generated points along ``(μ_fake − μ_real)/mean|x − μ_real|`` at a noisy copy
(:mod:`.losses.dmd`, :mod:`.dmd_common`) and ``(z_ref, y_ref)`` are ``reference_pairs`` fixed pairs of prior
noise and the teacher's ``teacher_steps``-step DDIM endpoint from it (the paper's regression loss, made once;
LPIPS on images, the squared error on points here). The fake score ``μ_fake`` learns the generator's
distribution by denoising ``sg(concat(x, x_ref))``. ``regression_weight = 0`` drops the pairs (and
``x_ref``): pure distribution matching.

Compared with revsic/flowmodels' toy ``dmd`` (MIT), which normalises its score-form gradient by the distance to
the regression target ``mean |y_ref − x|`` and regresses every generated point on its own teacher endpoint,
nbdistill keeps the paper's normalisation ``mean |x − μ_real(x_t, t)|`` and its separate reference batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.registry import HParam, register
from .base import SCORE_VIEWS
from .dmd_common import DistributionMatchingModule
from .samplers import ddim

#: Seed of the reference pairs' prior noise: the same pairs after a resume, so no checkpoint needs to hold them.
REFERENCE_SEED = 1234


@register("score.dmd", views=SCORE_VIEWS + ("score_fields",))
class DMD(DistributionMatchingModule):
    """Distribution matching distillation: a one-step generator moved along the fake-minus-real score, plus a regression on teacher ODE pairs (Yin et al., 2024).

    The student is the generator ``G(z) = student(z, t_max)``; ``init="teacher"`` starts it from the teacher's
    weights (the paper's start; the architectures must match). The fake score is a trainable copy of the
    teacher's network (``fake_init="auto"``/``"teacher"``) or of the student (``"student"``; also "auto"'s choice
    for a teacher without weights, such as the exact mixture). Logged terms: ``dm``, ``regression``, ``fake``.
    """

    teacher_steps = HParam(int, 64, 2, 4096, help="DDIM steps of the teacher ODE that makes the regression targets")
    reference_pairs = HParam(int, 512, 1, 100_000, help="fixed (noise, teacher ODE endpoint) pairs of the regression loss")
    regression_weight = HParam(float, 0.25, 0.0, 100.0, help="λ_reg, weight of the regression loss (0: none)")

    def build_parts(self) -> None:
        super().build_parts()
        #: the reference pairs ``(z_ref, y_ref)``, made at the first step (they take the data's shape)
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None

    def reference(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_ref, y_ref)``: ``reference_pairs`` prior draws of seed :data:`REFERENCE_SEED` shaped like one point
        of ``like``, and the teacher's ``teacher_steps``-step DDIM from each (t_max to t_min)."""
        if self._reference is None or self._reference[0].shape[1:] != like.shape[1:] or self._reference[0].device != like.device:
            gen = torch.Generator().manual_seed(REFERENCE_SEED)
            z = torch.randn(self.reference_pairs, *like.shape[1:], generator=gen, dtype=like.dtype).to(like.device)
            with torch.no_grad():
                y = ddim(
                    self.teacher, self.noise, z, self.noise.timesteps(self.teacher_steps, dtype=like.dtype, device=like.device)
                )
            self._reference = (z, y)
        return self._reference

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        data = batch[0] if isinstance(batch, (list, tuple)) else batch
        x = self.generate(torch.randn_like(data))
        terms: dict[str, torch.Tensor] = {}
        if self.regression_weight > 0:
            z_ref, y_ref = self.reference(data)
            pick = torch.randint(len(z_ref), (min(len(data), len(z_ref)),), device=data.device)
            x_ref = self.generate(z_ref[pick])
            terms["regression"] = F.mse_loss(x_ref, y_ref[pick])
            x = torch.cat([x, x_ref])
        terms["dm"] = self.dm_term(x)
        terms["fake"] = self.fake_term(x)
        terms["loss"] = terms["dm"] + self.regression_weight * terms.get("regression", 0.0) + terms["fake"]
        return terms
