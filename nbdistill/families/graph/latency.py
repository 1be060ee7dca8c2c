"""Inference latency of a GNN against an MLP: the reason to distil one into the other.

A GNN's prediction for a node needs that node's L-hop neighbourhood: gathering it (and running the
layers over it) is what makes GNN serving slow, and what an MLP on the node's own features avoids
(GLNN's argument). Both are measured here, on the whole graph and for a batch of nodes served alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def median_ms(call: Callable[[], object], repeats: int = 20, warmup: int = 3, cuda: bool = False) -> float:
    """Median wall time of ``call()`` in milliseconds, after ``warmup`` untimed calls; with ``cuda``
    each call is timed until the GPU has finished it."""
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


@torch.no_grad()
def inference_latency(
    gnn: nn.Module,
    mlp: nn.Module,
    graph,
    nodes: torch.Tensor,
    num_hops: int,
    repeats: int = 20,
    threads: int = 1,
) -> dict[str, float]:
    """Median milliseconds, with ``threads`` torch threads (1: one serving request per core, and
    timings that other processes on the machine disturb least), of:

    - ``gnn_graph_ms`` / ``mlp_graph_ms``: logits of every node of ``graph``;
    - ``gnn_nodes_ms`` / ``mlp_nodes_ms``: logits of ``nodes`` alone; the GNN first extracts their
      ``num_hops``-hop subgraph (PyG's ``k_hop_subgraph``), the MLP reads their feature rows.
    """
    from torch_geometric.utils import k_hop_subgraph

    gnn_mode, mlp_mode, threads_before = gnn.training, mlp.training, torch.get_num_threads()
    torch.set_num_threads(threads)
    gnn.eval()
    mlp.eval()

    def gnn_nodes():
        subset, edges, mapping, _ = k_hop_subgraph(
            nodes, num_hops, graph.edge_index, relabel_nodes=True, num_nodes=graph.num_nodes
        )
        return gnn(graph.x[subset], edges)[mapping]

    cuda = graph.x.is_cuda
    try:
        return {
            "gnn_graph_ms": median_ms(lambda: gnn(graph.x, graph.edge_index), repeats, cuda=cuda),
            "mlp_graph_ms": median_ms(lambda: mlp(graph.x), repeats, cuda=cuda),
            "gnn_nodes_ms": median_ms(gnn_nodes, repeats, cuda=cuda),
            "mlp_nodes_ms": median_ms(lambda: mlp(graph.x[nodes]), repeats, cuda=cuda),
        }
    finally:
        torch.set_num_threads(threads_before)
        gnn.train(gnn_mode)
        mlp.train(mlp_mode)


@torch.no_grad()
def mlp_latency(mlp: nn.Module, graph, nodes: torch.Tensor, repeats: int = 20, threads: int = 1) -> dict[str, float]:
    """``mlp_graph_ms`` and ``mlp_nodes_ms`` of :func:`inference_latency`, for a run without a GNN
    (GLNN's ``lam = 1``: the MLP trained alone)."""
    mode, threads_before = mlp.training, torch.get_num_threads()
    torch.set_num_threads(threads)
    mlp.eval()
    cuda = graph.x.is_cuda
    try:
        return {
            "mlp_graph_ms": median_ms(lambda: mlp(graph.x), repeats, cuda=cuda),
            "mlp_nodes_ms": median_ms(lambda: mlp(graph.x[nodes]), repeats, cuda=cuda),
        }
    finally:
        torch.set_num_threads(threads_before)
        mlp.train(mode)
