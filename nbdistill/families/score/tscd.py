r"""``score.tscd``: Trajectory Segmented Consistency Distillation (Ren et al., "Hyper-SD: Trajectory Segmented
Consistency Model for Efficient Image Synthesis", NeurIPS 2024, arXiv 2404.13686, §3.1 and Fig. 2).

Consistency distillation (:mod:`.consistency`, same teacher step, EMA target and distance) in which the
consistency function maps a point to the *lower edge* of its time segment instead of to ``ε``: the teacher's
``N``-step grid is cut into ``k`` segments (:func:`.losses.tscd.segment_edges`) and a step from ``t_n`` trains

    L = d( f_θ(x_{t_n}, t_n → b_n), sg f_θ⁻(x̂_{t_{n+1}}, t_{n+1} → b_n) ),   b_n = the segment's lower edge,

with ``f(x, t → b)`` the DDIM step of the denoiser's x0-prediction to ``b`` (exactly ``x`` at ``t = b``, so the
target is the teacher's point ``x̂`` when ``t_{n+1}`` is an edge). Training is progressive, as the paper's
``8 → 4 → 2 → 1``: it starts with ``segments`` segments and, every ``round_steps`` training steps, halves ``k``
(rounded up) down to ``steps``; each stage starts from the previous stage's student (and EMA target) and the
given teacher's ODE stays the target's solver. With ``k = 1`` the loss is ordinary CD's. The student samples
with ``k`` deterministic steps along the edges (``x ← f(x, e_j → e_{j+1})``, PCM's deterministic sampler).

What was checked: the paper's §3.1 and Fig. 2 (segments over ``[0, T]``, a map to each segment's lower bound,
``k`` reduced ``8 → 4 → 2 → 1``, each stage from the previous one). Hyper-SD released weights only, no training
code; the edges on the teacher's DDIM grid, the DDIM map to an edge and the target equal to the teacher's point
at an edge are those of PCM's published training code (G-U-N/Phased-Consistency-Model,
``ddim_style_multiphase_pred`` and ``scalings_for_boundary_conditions_target``). Left out: the paper's adversarial
loss term, its human-feedback and score-distillation stages (other methods of this family).
"""

from __future__ import annotations

import math

import torch

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS
from .consistency import ConsistencyDistillation
from .losses.tscd import lower_edge, segment_edges


@register("score.tscd", views=SCORE_VIEWS)
class TrajectorySegmentedCD(ConsistencyDistillation):
    """Hyper-SD's trajectory segmented consistency distillation: consistency within k time segments, k halved stage by stage down to one (Ren et al., 2024).

    The current segment count ``k`` is ``segments_now`` (logged as ``train/segments``); the student samples
    with ``k`` steps along the segment edges.
    """

    segments = HParam(int, 8, 1, 4096, help="k of the first stage: segments of the teacher's grid (at most teacher_steps)")
    steps = HParam(int, 1, 1, 4096, help="k of the last stage (the student's sampling steps), reached by halving")
    round_steps = HParam(int, 300, 1, 1_000_000, help="training steps per stage before k halves")
    teacher_steps = HParam(int, 16, 2, 4096, help="N: steps of the teacher's ODE grid t_max -> t_min; a training step spans one")

    def build_parts(self) -> None:
        super().build_parts()
        if not self.steps <= self.segments <= self.teacher_steps:
            raise ConfigError(
                f"score.tscd needs steps <= segments <= teacher_steps (each segment at least one teacher step), got "
                f"steps={self.steps}, segments={self.segments}, teacher_steps={self.teacher_steps}"
            )
        #: k, the current number of segments (halves after each stage, down to ``steps``)
        self.segments_now = self.segments
        self._stage_batches = 0

    @property
    def sampling_steps(self) -> int:
        return self.segments_now

    def edges(self, device=None) -> torch.Tensor:
        """The ``k + 1`` grid indices of the current segments' edges."""
        return segment_edges(self.teacher_steps, self.segments_now, device=device)

    def boundary_index(self, index: torch.Tensor) -> torch.Tensor:
        return lower_edge(index, self.edges(index.device))

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(batch)
        terms["segments"] = terms["loss"].new_tensor(float(self.segments_now))
        return terms

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self._stage_batches += 1
        if self._stage_batches >= self.round_steps and self.segments_now > self.steps:
            self.segments_now = max(math.ceil(self.segments_now / 2), self.steps)
            self._stage_batches = 0

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """``k`` deterministic steps along the segment edges: ``x ← f(x, e_j → e_{j+1})`` from prior noise at ``t_max``."""
        grid = self.noise.timesteps(self.teacher_steps, dtype=dtype).to(self.device)
        times = grid[self.edges(self.device)]
        x = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        for t, b in zip(times[:-1], times[1:]):
            x = self.consistency(self.student, x, t.expand(n), b.expand(n))
        return x

    # -- the stage survives a checkpoint (``nbdistill resume``, ``--ckpt_path``) ---------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["tscd"] = {"segments_now": self.segments_now, "stage_batches": self._stage_batches}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("tscd")
        if state is not None:
            self.segments_now, self._stage_batches = state["segments_now"], state["stage_batches"]
