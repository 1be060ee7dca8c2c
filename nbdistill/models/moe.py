r"""A small mixture-of-experts MLP: a dense stem, one routed layer of expert MLPs, a dense head.

The routed layer follows the Switch/sparse-MoE form (Shazeer et al. 2017; Fedus, Zoph & Shazeer
2022): a gating network scores the experts, each example goes to its ``top_k`` best-scored
experts, and their outputs are summed weighted by the gate probabilities, added to the stem's
output (a residual connection):

.. math::
    h = \mathrm{ReLU}(W_{\text{stem}} x), \quad g = \mathrm{softmax}(W_g h), \quad
    y = W_{\text{head}} \Big( h + \sum_{e \in \mathrm{top}_k(g)} g_e\, E_e(h) \Big).

The stem and head are the *non-expert* weights, the ones a dense student of the same widths can
be initialised from (:meth:`MoEMLP.non_expert_layers`).
"""

from __future__ import annotations

import torch
from torch import nn


class MoEMLP(nn.Module):
    """``in_features → hidden →`` (``num_experts`` experts ``hidden → expert_hidden → hidden``, top-``top_k`` routed) ``→ out_features``."""

    def __init__(
        self,
        in_features: int = 64,
        hidden: int = 64,
        num_experts: int = 4,
        expert_hidden: int = 128,
        out_features: int = 10,
        top_k: int = 1,
    ):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be between 1 and num_experts={num_experts}, got {top_k}")
        self.in_features = in_features
        self.top_k = top_k
        self.stem = nn.Linear(in_features, hidden)
        self.gate = nn.Linear(hidden, num_experts)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, expert_hidden), nn.ReLU(), nn.Linear(expert_hidden, hidden))
            for _ in range(num_experts)
        )
        self.head = nn.Linear(hidden, out_features)

    def route(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate probabilities ``[B, num_experts]`` and the routing weights: those probabilities kept on
        each example's top-k experts, 0 elsewhere."""
        probs = torch.softmax(self.gate(h), dim=-1)
        top = probs.topk(self.top_k, dim=-1).indices
        return probs, torch.zeros_like(probs).scatter(-1, top, probs.gather(-1, top))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"MoEMLP expects {self.in_features} input features, got {x.shape[1]}")
        h = torch.relu(self.stem(x))
        probs, weights = self.route(h)
        self.balance_loss = load_balancing_loss(probs, weights, self.top_k)
        # every expert runs on every example (the networks are tiny); a weight of 0 drops the unrouted ones
        outputs = torch.stack([expert(h) for expert in self.experts], dim=1)
        return self.head(h + (weights.unsqueeze(-1) * outputs).sum(1))

    def expert_load(self, x: torch.Tensor) -> torch.Tensor:
        """The share of examples of ``x`` routed to each expert (sums to ``top_k``)."""
        with torch.no_grad():
            return (self.route(torch.relu(self.stem(x.flatten(1))))[1] > 0).float().mean(0)

    def non_expert_layers(self) -> tuple[nn.Linear, nn.Linear]:
        """The dense layers outside the experts: ``(stem, head)``."""
        return self.stem, self.head


def load_balancing_loss(probs: torch.Tensor, weights: torch.Tensor, top_k: int) -> torch.Tensor:
    r"""Switch Transformer's auxiliary load-balancing loss :math:`N \sum_e f_e P_e`, 1 when the load
    is uniform: :math:`f_e` the share of routing slots given to expert e, :math:`P_e` its mean gate
    probability (Fedus, Zoph & Shazeer 2022). Only :math:`P_e` carries a gradient."""
    share = (weights > 0).float().mean(0) / top_k
    return probs.shape[-1] * (share * probs.mean(0)).sum()
