"""Message-passing GNNs (GIN, GCN, GAT from PyTorch Geometric) for node and graph classification.

Each is ``num_layers`` convolutions of width ``hidden`` with ReLU after each, then a linear head:

- ``readout=None``: one logit vector per node (node classification, the GLNN/FF-G2M teacher);
- ``readout="sum"`` or ``"mean"``: node embeddings pooled per graph (graph classification). A
  ``root_mask`` pools only the marked nodes: Mirage's distilled graphs are unions of computation
  trees whose roots alone stand for nodes of the original graphs.

Call as ``model(x, edge_index)`` (node logits) or ``model(x, edge_index, batch, root_mask)``.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

READOUTS = (None, "sum", "mean")


class GNN(nn.Module):
    """Base of :class:`GIN`, :class:`GCN` and :class:`GAT`; subclasses build one convolution."""

    kind = ""

    def __init__(
        self,
        in_channels: int,
        hidden: int = 64,
        out_channels: int = 2,
        num_layers: int = 2,
        readout: str | None = "sum",
        dropout: float = 0.0,
    ):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.in_channels = in_channels
        self.num_layers = num_layers
        self.readout = readout
        self.dropout = dropout
        widths = [in_channels] + [hidden] * num_layers
        self.convs = nn.ModuleList(self.conv(a, b) for a, b in pairwise(widths))
        self.head = nn.Linear(hidden, out_channels)

    def conv(self, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Node embeddings after the ``num_layers`` convolutions (each followed by ReLU)."""
        if x.shape[-1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels} node features, got {x.shape[-1]}")
        h = x.float()
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index))
            h = nn.functional.dropout(h, self.dropout, self.training)
        return h

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        batch: torch.Tensor | None = None,
        root_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.embed(x, edge_index)
        if self.readout is None:
            return self.head(h)
        from torch_geometric.utils import scatter

        if batch is None:
            batch = torch.zeros(h.shape[0], dtype=torch.long, device=h.device)
        size = int(batch.max()) + 1 if batch.numel() else 1
        if root_mask is not None:
            h, batch = h[root_mask], batch[root_mask]
        return self.head(scatter(h, batch, dim=0, dim_size=size, reduce=self.readout))


class GIN(GNN):
    r"""Graph Isomorphism Network (Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019):
    :math:`h_v' = \mathrm{MLP}\big((1+\epsilon)\,h_v + \sum_{u \in N(v)} h_u\big)` with :math:`\epsilon = 0`.
    """

    kind = "gin"

    def conv(self, in_channels: int, out_channels: int) -> nn.Module:
        from torch_geometric.nn import GINConv

        mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels))
        return GINConv(mlp)


class GCN(GNN):
    r"""Graph Convolutional Network (Kipf & Welling, ICLR 2017):
    :math:`h_v' = W \sum_{u \in N(v) \cup \{v\}} h_u / \sqrt{\hat d_u \hat d_v}`.
    """

    kind = "gcn"

    def conv(self, in_channels: int, out_channels: int) -> nn.Module:
        from torch_geometric.nn import GCNConv

        return GCNConv(in_channels, out_channels)


class GAT(GNN):
    r"""Graph Attention Network (Veličković et al., ICLR 2018): attention-weighted sum over
    :math:`N(v) \cup \{v\}`, ``heads`` heads concatenated (``hidden`` must be divisible by ``heads``).
    """

    kind = "gat"

    def __init__(self, *args, heads: int = 4, **kwargs):
        self.heads = heads
        super().__init__(*args, **kwargs)

    def conv(self, in_channels: int, out_channels: int) -> nn.Module:
        from torch_geometric.nn import GATConv

        if out_channels % self.heads:
            raise ValueError(f"GAT: hidden ({out_channels}) must be divisible by heads ({self.heads})")
        return GATConv(in_channels, out_channels // self.heads, heads=self.heads)
