"""``dataset.mtt``: Dataset Distillation by Matching Training Trajectories (Cazenavette et al., CVPR 2022)."""

from __future__ import annotations

from ...core.registry import register
from .trajectory_base import VIEWS, TrajectoryMatching


@register("dataset.mtt", views=VIEWS, needs_teacher=False)
class MTT(TrajectoryMatching):
    r"""MTT: match segments of expert training trajectories ("Dataset Distillation by Matching
    Training Trajectories", Cazenavette et al., CVPR 2022, Algorithm 1).

    Each training step: draw an expert τ* and a start epoch t ∈ {0 … T⁺−1}; from
    :math:`\hat\theta_0 = \theta^*_t` take N SGD steps on DSA-augmented minibatches of the synthetic
    set with the learned step size α; minimise
    :math:`\|\hat\theta_N - \theta^*_{t+M}\|^2 / \|\theta^*_t - \theta^*_{t+M}\|^2` over the images and α
    (SGD, momentum 0.5, at ``lr`` and ``lr_lr``). ``gradient`` picks how the gradient through the
    N steps is taken (:mod:`.unroll`): ``unrolled`` is MTT's; ``exact_constant_memory`` is the same
    gradient in memory that does not grow with N; ``tesla`` is TESLA's approximation.

    The experts (:mod:`.experts`) are trained once per network, data and recipe and reused. As in
    MTT's code, the validation network is trained at the learned α (``args.lr_net = syn_lr.item()``).

    *Deviation:* α is kept positive. MTT's code updates it by plain SGD and never bounds it, so a
    large ``lr_lr`` can drive it below zero (a 4-iteration test run went from 0.03 to −0.0055; on the
    kit's digits at lr_lr 0.1 the unbounded α diverged, NaN at step 3): the inner loop then ascends
    the loss. Here, after every update (and before each use, so a resumed run obeys it too), α is
    clamped to at least :attr:`MIN_SYN_LR_FRACTION` × its start value — a projected SGD step; while
    α stays above that floor it is MTT's update exactly — and the set is evaluated at that same α.

    The whole method is :class:`.trajectory_base.TrajectoryMatching`, the base its successors share.
    """
