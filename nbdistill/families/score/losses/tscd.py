r"""Trajectory segmented consistency distillation (Ren et al., "Hyper-SD: Trajectory Segmented Consistency
Model for Efficient Image Synthesis", NeurIPS 2024, arXiv 2404.13686, §3.1): the time range is cut into ``k``
segments and a point is mapped by the consistency function to its segment's *lower edge*, not to ``ε``.

The segments live on the teacher's ``N``-step grid ``t_0 = t_max > … > t_N = t_min``: the ``k + 1`` edge indices
are ``e_j = round(j·N/k)`` (:func:`segment_edges`; ``e_0 = 0``, ``e_k = N``; distinct when ``k ≤ N``), and a
consistency step from ``t_n`` to ``t_{n+1}`` belongs to the segment ``[t_{e_{j+1}}, t_{e_j})`` whose lower edge is
``t_{e_{j+1}}``, the first edge with index ``> n`` (:func:`lower_edge`). The loss is consistency distillation's
(:mod:`.consistency`) with the boundary ``b = t_{lower edge}``:

    L = d( f_θ(x_{t_n}, t_n → b), sg f_θ⁻(x̂_{t_{n+1}}, t_{n+1} → b) ),

whose target is ``x̂_{t_{n+1}}`` itself when ``t_{n+1} = b`` (the map's boundary condition). With ``k = 1`` the
only lower edge is ``t_N = ε``: ordinary CD. The edges on the sampling grid are PCM's (Wang et al. 2024,
``ddim_style_multiphase_pred``), the published code nearest to Hyper-SD, which released weights only.
"""

from __future__ import annotations

import torch


def segment_edges(n: int, k: int, device=None) -> torch.Tensor:
    """The ``k + 1`` grid indices ``round(j·n/k)``, ``j = 0..k``, of ``k`` segments of an ``n``-step grid (``1 ≤ k ≤ n``)."""
    if not 1 <= k <= n:
        raise ValueError(f"{k} segments need 1 <= k <= n = {n} grid steps")
    return torch.round(torch.arange(k + 1, dtype=torch.float64) * (n / k)).long().to(device)


def lower_edge(index: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """For steps starting at grid indices ``index`` (``0 ≤ index < n``), the grid index of their segment's lower
    edge in time: the smallest edge index ``> index``."""
    return edges[torch.searchsorted(edges, index, right=True)]
