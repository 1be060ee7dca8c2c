"""The math of optimization trajectory distillation: the principal subspace of a training run's
gradients, and the projection of new gradients onto it.

Fan, Liu, Chang, Huang, Chen & Cai, "Taxonomy Adaptive Cross-Domain Adaptation in Medical Imaging
via Optimization Trajectory Distillation" (ICCV 2023, arXiv 2307.14709). The abstract: the method
"exploits the low-rank nature of gradient space" to "regularize the learning dynamics of
insufficiently annotated domain and classes with the external guidance obtained from reliable
sources". nbdistill's reading, at laptop scale (UNVERIFIED against the paper's §3, which could not
be read here; no official code was found):

- the *trajectory* of the reliable run is the matrix ``G`` (``T × P``) of its ``T`` flattened
  optimiser steps (the paper: gradients; see :class:`~.otd.TrajectoryDistillation`) of ``P`` parameters; its principal subspace is spanned by the top-``r`` right singular
  vectors, ``V_r`` (``P × r``, orthonormal columns), of ``G = U Σ Vᵀ``;
- a step (or gradient) ``g`` of the scarcely labelled run is steered into that subspace:
  ``g' = V_r V_rᵀ g + (1 − λ)·(g − V_r V_rᵀ g)``, with ``λ ∈ [0, 1]`` the *strength* (0: plain
  training; 1: every step stays in the reliable run's subspace).
"""

from __future__ import annotations

import torch


def trajectory_subspace(gradients: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The orthonormal basis ``V_r`` (``P × r``) of the top-``rank`` right singular vectors of the
    trajectory ``gradients`` (``T × P``, one flattened gradient a row), and every singular value
    (descending). ``rank`` above ``min(T, P)`` is cut to it."""
    if gradients.dim() != 2 or not len(gradients):
        raise ValueError(f"the trajectory is a T x P matrix of flattened gradients, got shape {tuple(gradients.shape)}")
    _, singular, vh = torch.linalg.svd(gradients, full_matrices=False)
    rank = max(1, min(int(rank), vh.shape[0]))
    return vh[:rank].T.contiguous(), singular


def energy_captured(singular: torch.Tensor) -> torch.Tensor:
    """The cumulative share ``Σ_{i≤k} σ_i² / Σ_i σ_i²`` of the trajectory's energy in the top-``k``
    directions, for every ``k``."""
    power = singular.double() ** 2
    return torch.cumsum(power, 0) / power.sum().clamp_min(1e-300)


def steer(gradient: torch.Tensor, basis: torch.Tensor, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``g' = V Vᵀ g + (1 − strength)·(g − V Vᵀ g)`` and the share ``‖g − V Vᵀ g‖ / ‖g‖`` of the
    gradient outside the subspace (0 for a zero gradient). ``basis`` has orthonormal columns."""
    inside = basis @ (basis.T @ gradient)
    outside = gradient - inside
    norm = gradient.norm()
    share = outside.norm() / norm if norm > 0 else norm
    return inside + (1.0 - strength) * outside, share
