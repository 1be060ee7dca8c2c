"""Train a GNN node classifier full-batch: the teacher of GLNN and FF-G2M when none is given."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

#: ``report(epoch, train_loss, val_acc)``, called as the teacher trains (see :func:`train_node_classifier`).
Report = Callable[[int, float, float], None]


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


@contextmanager
def cached_normalisation(model: nn.Module) -> Iterator[None]:
    r"""Within the block, each ``GCNConv`` of ``model`` normalises the graph's edges once
    (:math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}`, PyG's ``cached=True``) instead of at every call: right
    while one fixed graph is trained on, wrong for another graph, so the cache is dropped on exit.
    """
    from torch_geometric.nn import GCNConv

    convs = [m for m in model.modules() if isinstance(m, GCNConv) and not m.cached]
    for conv in convs:
        conv.cached = True
    try:
        yield
    finally:
        for conv in convs:
            conv.cached = False
            conv._cached_edge_index = None
            conv._cached_adj_t = None


def train_node_classifier(
    model: nn.Module,
    graph,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    seed: int = 0,
    report: Report | None = None,
    report_every: int = 1,
) -> dict[str, float]:
    """Train ``model(x, edge_index) -> node logits`` on the labelled nodes (``train_mask``) with Adam,
    seeing only the observed part of the graph (:func:`observed_graph`), and keep the weights of the epoch with
    the best validation accuracy (the recipe of the GLNN and FF-G2M teachers). Returns
    ``{"val_acc", "epoch"}`` of the kept weights; ``model`` is left in eval mode.

    ``report(epoch, train_loss, val_acc)`` is called every ``report_every`` epochs and after the last.
    Each epoch is one training step and one evaluation pass, as a hand-written loop would do them:
    the graph's GCN normalisation is computed once (:func:`cached_normalisation`), the best weights
    are copied only when validation improves, and nothing leaves the device between reports.
    """
    torch.manual_seed(seed)
    graph = observed_graph(graph)
    x, edge_index = graph.x, graph.edge_index
    train_y, val_y = graph.y[graph.train_mask], graph.y[graph.val_mask]
    train_mask, val_mask = graph.train_mask, graph.val_mask
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_acc, best_epoch, best_state = -1.0, 0, None
    with cached_normalisation(model):
        for epoch in range(1, epochs + 1):
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x, edge_index)[train_mask], train_y)
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                val = (model(x, edge_index)[val_mask].argmax(-1) == val_y).float().mean().item()
            if val > best_acc:
                best_acc, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if report is not None and (epoch % report_every == 0 or epoch == epochs):
                report(epoch, float(loss.detach()), val)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"val_acc": best_acc, "epoch": best_epoch}
