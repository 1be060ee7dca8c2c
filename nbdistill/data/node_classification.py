"""Node classification data sets: one graph whose nodes are split into train/val/test masks.

- :class:`KarateClub` — PyG's bundled Zachary karate club (34 nodes, 4 communities, 4 labelled nodes).
- :class:`SBM` — a stochastic block model with a homophily knob and noisy class-dependent features.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ..core.errors import ConfigError
from .sampling import seeded


def _only(items: list):
    return items[0]


class NodeDataModule(pl.LightningDataModule):
    """Node classification on one graph: every loader yields that graph (full-batch training).

    The graph carries ``x``, ``edge_index``, ``y`` and boolean ``train_mask``, ``val_mask``,
    ``test_mask`` and ``obs_mask``: the nodes seen while training. ``inductive=True`` hides the test
    nodes (and their edges) from training, as GLNN's inductive setting does; otherwise every node
    is observed (transductive).
    """

    num_classes: int
    num_node_features: int

    def __init__(self, inductive: bool = False):
        super().__init__()
        self.inductive = inductive
        self._graph = None

    def make_graph(self):
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._graph is not None:
            return
        graph = self.make_graph()
        graph.obs_mask = ~graph.test_mask if self.inductive else torch.ones_like(graph.test_mask)
        self._graph = graph

    @property
    def graph(self):
        self.setup()
        return self._graph

    def _loader(self) -> DataLoader:
        return DataLoader([self.graph], batch_size=1, collate_fn=_only)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()


def _split_masks(y: torch.Tensor, candidates: torch.Tensor, train_per_class: int, val_per_class: int, seed: int):
    """Per class, ``train_per_class`` train and ``val_per_class`` val nodes drawn from ``candidates``; the rest test."""
    g = torch.Generator().manual_seed(seed)
    n = y.numel()
    train, val = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    for c in torch.unique(y).tolist():
        nodes = ((y == c) & candidates).nonzero().flatten()
        nodes = nodes[torch.randperm(len(nodes), generator=g)]
        if len(nodes) < train_per_class + val_per_class + 1:
            raise ConfigError(
                f"class {c} has {len(nodes)} nodes: too few for {train_per_class} train, {val_per_class} val and a test node"
            )
        train[nodes[:train_per_class]] = True
        val[nodes[train_per_class : train_per_class + val_per_class]] = True
    return train, val, candidates & ~train & ~val


class KarateClub(NodeDataModule):
    """Zachary's karate club as bundled with PyG (no download): 34 members, 4 communities, one-hot
    identity features, one labelled member per community (PyG's ``train_mask``). The other 30 are
    split into ``val_size`` validation and the rest test members by ``split_seed``.
    """

    num_classes = 4
    num_node_features = 34

    def __init__(self, val_size: int = 10, split_seed: int = 0):
        super().__init__(inductive=False)
        if not 1 <= val_size <= 29:
            raise ConfigError(f"val_size must be between 1 and 29, got {val_size}")
        self.val_size = val_size
        self.split_seed = split_seed

    def make_graph(self):
        from torch_geometric.datasets import KarateClub as Karate

        graph = Karate()[0]
        rest = (~graph.train_mask).nonzero().flatten()
        rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(self.split_seed))]
        graph.val_mask = torch.zeros_like(graph.train_mask)
        graph.val_mask[rest[: self.val_size]] = True
        graph.test_mask = ~graph.train_mask & ~graph.val_mask
        return graph


def sbm_edges(sizes: list[int], probs: torch.Tensor) -> torch.Tensor:
    """Edges of an undirected stochastic block model, both directions, sorted: every pair of nodes
    of blocks (a, b) is an edge with probability ``probs[a, b]``, independently.

    Drawn per pair of blocks as the edge count k ~ Binomial(M, p) over the M node pairs, then k
    distinct pairs uniformly: the same distribution as one Bernoulli per pair, in memory that
    grows with the edges, not with the pairs (PyG's ``stochastic_blockmodel_graph`` lists all
    n(n-1)/2 pairs: 3 GB for 10 000 nodes). Uses torch's global generator.
    """
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    parts = []
    for a, n_a in enumerate(sizes):
        for b in range(a, len(sizes)):
            n_b, p = sizes[b], float(probs[a, b])
            pairs = n_a * (n_a - 1) // 2 if a == b else n_a * n_b
            if pairs == 0 or p <= 0.0:
                continue
            k = int(torch.binomial(torch.tensor(float(pairs), dtype=torch.float64), torch.tensor(p, dtype=torch.float64)))
            t = _distinct_integers(pairs, k)
            if a == b:  # t = i(i-1)/2 + j with 0 <= j < i < n_a
                i = ((1 + torch.sqrt(1 + 8 * t.double())) / 2).floor().long()
                i = i - (i * (i - 1) // 2 > t).long()
                i = i + ((i + 1) * i // 2 <= t).long()
                src, dst = starts[a] + i, starts[a] + t - i * (i - 1) // 2
            else:
                src, dst = starts[a] + t // n_b, starts[b] + t % n_b
            parts.append(torch.stack([src, dst]))
    if not parts:
        return torch.empty(2, 0, dtype=torch.long)
    edges = torch.cat(parts, 1)
    edges = torch.cat([edges, edges.flip(0)], 1)
    order = torch.argsort(edges[0] * sum(sizes) + edges[1])
    return edges[:, order]


def _distinct_integers(n: int, k: int) -> torch.Tensor:
    """``k`` distinct integers drawn uniformly from ``0 .. n-1`` (a uniformly random k-subset)."""
    if k == 0:
        return torch.empty(0, dtype=torch.long)
    if 2 * k > n:  # dense: cheap, since n < 2k
        return torch.randperm(n)[:k]
    found = torch.empty(0, dtype=torch.long)
    while len(found) < k:  # draws with replacement, duplicates dropped; a few rounds at most
        found = torch.unique(torch.cat([found, torch.randint(0, n, (k - len(found) + 16,))]))
    return found[torch.randperm(len(found))[:k]]


class SBM(NodeDataModule):
    r"""A stochastic block model: ``num_classes`` equal blocks, mean degree ``avg_degree``, a share
    ``homophily`` of edges inside a block, so

    .. math::
        p_\text{in} = \frac{h\,\bar d}{n_b - 1}, \qquad p_\text{out} = \frac{(1-h)\,\bar d}{n - n_b}.

    Features are the class's mean (a standard normal vector drawn once per class) plus Gaussian
    noise of std ``feature_noise``: the noisier the features, the more a GNN gains over an MLP by
    averaging neighbours, as long as ``homophily`` is high.
    """

    def __init__(
        self,
        num_nodes: int = 600,
        num_classes: int = 4,
        avg_degree: float = 6.0,
        homophily: float = 0.8,
        num_features: int = 16,
        feature_noise: float = 2.0,
        train_per_class: int = 20,
        val_per_class: int = 30,
        inductive: bool = False,
        seed: int = 0,
    ):
        super().__init__(inductive=inductive)
        if num_classes < 2 or num_nodes < 2 * num_classes:
            raise ConfigError(f"need at least 2 classes and 2 nodes per class, got {num_classes} classes, {num_nodes} nodes")
        if not 0.0 <= homophily <= 1.0:
            raise ConfigError(f"homophily must be in [0, 1], got {homophily}")
        if avg_degree <= 0 or feature_noise < 0 or num_features < 1:
            raise ConfigError("avg_degree must be positive, feature_noise non-negative and num_features at least 1")
        self.num_nodes = num_nodes
        self.num_classes = num_classes
        self.avg_degree = avg_degree
        self.homophily = homophily
        self.num_node_features = num_features
        self.feature_noise = feature_noise
        self.train_per_class = train_per_class
        self.val_per_class = val_per_class
        self.seed = seed

    def make_graph(self):
        from torch_geometric.data import Data

        sizes = [self.num_nodes // self.num_classes] * self.num_classes
        sizes[-1] += self.num_nodes - sum(sizes)
        block = sizes[0]
        p_in = min(1.0, self.homophily * self.avg_degree / max(block - 1, 1))
        p_out = min(1.0, (1 - self.homophily) * self.avg_degree / (self.num_nodes - block))
        probs = torch.full((self.num_classes, self.num_classes), p_out).fill_diagonal_(p_in)
        y = torch.repeat_interleave(torch.arange(self.num_classes), torch.tensor(sizes))
        with seeded(self.seed):
            edge_index = sbm_edges(sizes, probs)
            means = torch.randn(self.num_classes, self.num_node_features)
            x = means[y] + self.feature_noise * torch.randn(self.num_nodes, self.num_node_features)
        train, val, test = _split_masks(
            y, torch.ones_like(y, dtype=torch.bool), self.train_per_class, self.val_per_class, self.seed
        )
        return Data(x=x, edge_index=edge_index, y=y, train_mask=train, val_mask=val, test_mask=test)
