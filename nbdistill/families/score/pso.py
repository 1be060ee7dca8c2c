r"""``score.pso``: Pairwise Sample Optimization of a distilled few-step generator toward a new target.

Miao et al., "Tuning Timestep-Distilled Diffusion Model Using Pairwise Sample Optimization" (ICLR 2025,
arXiv 2410.03190): fine-tuning a timestep-distilled model with the plain diffusion loss blurs it, and
distilling again from a fine-tuned teacher costs a full distillation. PSO instead pairs each training
(target) sample ``x^w`` with a reference sample ``x^l`` drawn from the distilled model itself and
raises their relative likelihood margin with a DPO loss against the frozen starting model (the formula
is in :mod:`.losses.pso`):

    L = − log σ( − β [ (e_θ(x^w) − e_ref(x^w)) − (e_θ(x^l) − e_ref(x^l)) ] ),  e(x) = ‖x − D(α_t x + σ_t ε, t)‖²,

with ``t`` one of the student's own ``steps`` sampling times (a distilled model is only asked to denoise
there) and the same ``(t, ε)`` for both members of a pair. ``sampling="offline"`` draws ``x^l`` from the
frozen reference (the paper's offline pairs, sampled from the model before tuning); ``"online"`` from the
current student (its online variant).

In 2-D the "new target" is a part of the data: the training points in the half-plane ``target_region``
(``right``: ``x₀ > 0``, ``left``, ``upper``: ``x₁ > 0``, ``lower``; ``all`` keeps every point, which tunes
the generator toward the data it was distilled from). The generator to tune is the given student (a
distilled one, e.g. from ``score.progressive`` or ``score.eg4d``), or with ``init="teacher"`` the teacher's
weights copied into it (the architectures must match): a many-step model used as a ``steps``-step one.
The reference is a frozen copy of the starting student (a child module, so it is checkpointed).
The loss logs ``target_fraction``, the share of the student's own samples in the target region.
"""

from __future__ import annotations

import copy

import torch

from ...core.module import freeze
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .losses.pso import denoising_error, pso_loss
from .progressive import copy_teacher_weights
from .samplers import sample

#: Each target region as (axis, sign): the points with ``sign * x[:, axis] > 0``.
REGIONS: dict[str, tuple[int, float] | None] = {
    "all": None,
    "right": (0, 1.0),
    "left": (0, -1.0),
    "upper": (1, 1.0),
    "lower": (1, -1.0),
}


def in_region(x: torch.Tensor, region: str) -> torch.Tensor:
    """A boolean mask ``[B]`` of the points of ``x`` ``[B, d]`` that lie in ``region`` (see :data:`REGIONS`)."""
    rule = REGIONS[region]
    if rule is None:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    axis, sign = rule
    return sign * x.flatten(1)[:, axis] > 0


@register("score.pso", views=SCORE_VIEWS)
class PairwiseSampleOptimization(ScoreModule):
    """Pairwise sample optimisation: tune a distilled few-step generator toward a new target by a DPO loss on (target, own sample) pairs against its frozen start (Miao et al., 2025).

    The target is the data in ``target_region``; the student keeps its ``steps``-step sampler, and
    ``target_fraction`` (logged) is the share of its samples that land in the region.
    """

    beta = HParam(float, 1.0, 1e-3, 1e4, log=True, help="DPO inverse temperature β of the likelihood margin")
    steps = HParam(int, 1, 1, 64, help="the distilled student's sampling steps (t is drawn from its grid)")
    target_region = HParam(str, "right", choices=tuple(REGIONS), help="the new target: the data points in this half-plane")
    sampling = HParam(
        str, "offline", choices=("offline", "online"), help="draw the own samples from the frozen start or the current student"
    )
    init = HParam(
        str, "given", choices=("given", "teacher"), help="tune the given (distilled) student or a copy of the teacher's weights"
    )

    def build_parts(self) -> None:
        super().build_parts()
        if self.init == "teacher":
            copy_teacher_weights(self.teacher, self.student, self.method_name)
        #: the frozen starting generator: the DPO reference and (offline) the source of the own samples
        self.reference = freeze(copy.deepcopy(self.student))

    def train(self, mode: bool = True):
        super().train(mode)
        self.reference.eval()
        return self

    @property
    def sampling_steps(self) -> int:
        return self.steps

    def own_samples(self, model: torch.nn.Module, n: int, like: torch.Tensor) -> torch.Tensor:
        """``n`` samples of ``model`` with the student's ``steps``-step DDIM (no gradients)."""
        model_was = model.training
        model.eval()
        out = sample(model, self.noise, n, self.steps, shape=tuple(like.shape[1:]), dtype=like.dtype, device=like.device)
        model.train(model_was)
        return out

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        x_w = x[in_region(x, self.target_region)]
        mine = self.own_samples(self.student, x.shape[0], x)
        fraction = in_region(mine, self.target_region).to(x.dtype).mean()
        if len(x_w) == 0:  # no target point in this batch: nothing to pair, a zero loss on the graph
            return {"loss": 0.0 * self.generate(x[:1]).sum(), "target_fraction": fraction}
        x_l = mine[: len(x_w)] if self.sampling == "online" else self.own_samples(self.reference, len(x_w), x)
        grid = self.noise.timesteps(self.steps, dtype=x.dtype, device=x.device)[:-1]
        t = grid[torch.randint(len(grid), (len(x_w),), device=x.device)]
        eps = torch.randn_like(x_w)
        with torch.no_grad():
            ref_w = denoising_error(self.reference, x_w, t, eps, self.noise)
            ref_l = denoising_error(self.reference, x_l, t, eps, self.noise)
        err_w = denoising_error(self.student, x_w, t, eps, self.noise)
        err_l = denoising_error(self.student, x_l, t, eps, self.noise)
        return {**pso_loss(err_w, ref_w, err_l, ref_l, self.beta), "target_fraction": fraction}
