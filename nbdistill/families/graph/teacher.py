"""Train a GNN node classifier full-batch: the teacher of GLNN and FF-G2M when none is given."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def observed_graph(graph):
    """The part of ``graph`` seen while training: the nodes of its ``obs_mask`` (renumbered in order),
    the edges between them and their masks. The whole graph when every node is observed."""
    from torch_geometric.utils import subgraph

    keep = graph.obs_mask
    if bool(keep.all()):
        return graph
    edge_index, _ = subgraph(keep, graph.edge_index, relabel_nodes=True, num_nodes=graph.num_nodes)
    seen = graph.clone()
    seen.edge_index = edge_index
    for key in ("x", "y", "train_mask", "val_mask", "test_mask", "obs_mask"):
        seen[key] = graph[key][keep]
    return seen


def train_node_classifier(
    model: nn.Module,
    graph,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``model(x, edge_index) -> node logits`` on the labelled nodes (``train_mask``) with Adam,
    seeing only the observed part of the graph (:func:`observed_graph`), and keep the weights of the epoch with
    the best validation accuracy (the recipe of the GLNN and FF-G2M teachers). Returns
    ``{"val_acc", "epoch"}`` of the kept weights; ``model`` is left in eval mode.
    """
    torch.manual_seed(seed)
    graph = observed_graph(graph)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        logits = model(graph.x, graph.edge_index)
        F.cross_entropy(logits[graph.train_mask], graph.y[graph.train_mask]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            pred = model(graph.x, graph.edge_index).argmax(-1)
        val = (pred[graph.val_mask] == graph.y[graph.val_mask]).float().mean().item()
        if val > best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return {"val_acc": best[0], "epoch": best[1]}
