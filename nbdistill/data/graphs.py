"""Graph data sets made locally (no download): graph classification and node classification.

Graph classification (a list of small graphs, one label each; node features are one-hot node labels,
which Mirage hashes):

- :class:`BAMotifs` — BA-2motifs built offline with PyG's ``ExplainerDataset``: a Barabási–Albert
  graph with a *house* motif attached (class 0) or a *5-cycle* (class 1); node label = degree.
- :class:`LabelledMotifs` — random "atom" labels on a BA graph plus a 5-cycle whose labels are the
  same multiset in both classes but arranged differently, so only the computation trees tell them apart.
- :class:`TUGraphs` — the TU benchmark sets (MUTAG, NCI1, …) through PyG's ``TUDataset`` (downloads).

Node classification (one graph whose nodes are split into train/val/test masks):

- :class:`KarateClub` — PyG's bundled Zachary karate club (34 nodes, 4 communities, 4 labelled nodes).
- :class:`SBM` — a stochastic block model with a homophily knob and noisy class-dependent features.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ..core.errors import ConfigError
from .sampling import EpochSeededSampler


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators (PyG's generators draw from both), then restore them."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction and test_fraction must be in (0, 1) and sum below 1, got {val_fraction}, {test_fraction}"
        )


# -- graph classification --------------------------------------------------------------------------
class GraphSetDataModule(pl.LightningDataModule):
    """Graph classification over an in-memory list of PyG ``Data`` (``x``, ``edge_index``, ``y`` of
    shape ``[1]``, ``node_label``), split by class and batched by PyG's ``DataLoader``.

    Subclasses implement :meth:`make_graphs` and set ``num_classes`` and ``num_node_features``. The
    training order is a function of ``(seed, epoch)``, so a resumed run sees the same batches.
    """

    num_classes: int
    num_node_features: int

    def __init__(
        self,
        batch_size: int = 32,
        split_seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
        eval_batch_size: int = 512,
    ):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        _check_fractions(val_fraction, test_fraction)
        self.batch_size = batch_size
        self.split_seed = split_seed
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self._splits: dict[str, list] | None = None
        self._sampler: EpochSeededSampler | None = None

    def make_graphs(self) -> list:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        from sklearn.model_selection import train_test_split

        graphs = self.make_graphs()
        labels = np.array([int(g.y) for g in graphs])
        idx = np.arange(len(graphs))
        held = self.val_fraction + self.test_fraction
        try:
            train, rest = train_test_split(idx, test_size=held, stratify=labels, random_state=self.split_seed)
            val, test = train_test_split(
                rest, test_size=self.test_fraction / held, stratify=labels[rest], random_state=self.split_seed
            )
        except ValueError as exc:
            raise ConfigError(f"cannot split {len(graphs)} graphs into train/val/test by class: {exc}") from exc
        self._splits = {
            name: [graphs[i] for i in sorted(part)] for name, part in (("train", train), ("val", val), ("test", test))
        }
        self._sampler = EpochSeededSampler(len(self._splits["train"]), self.seed)

    def graphs(self, split: str) -> list:
        """The graphs of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        self.setup()
        if split not in self._splits:
            raise ConfigError(f"unknown split {split!r}; use one of {sorted(self._splits)}")
        return self._splits[split]

    def skip_batches_once(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next training pass (an exact mid-epoch resume)."""
        self.setup()
        if batches * self.batch_size < len(self._splits["train"]):  # not after an epoch's last batch
            self._sampler.skip_once(batches * self.batch_size)

    def train_dataloader(self):
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(self.graphs("train"), batch_size=self.batch_size, sampler=self._sampler)

    def val_dataloader(self):
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(self.graphs("val"), batch_size=self.eval_batch_size)

    def test_dataloader(self):
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(self.graphs("test"), batch_size=self.eval_batch_size)


def _graph(edge_index: torch.Tensor, node_label: torch.Tensor, num_labels: int, y: int):
    from torch_geometric.data import Data

    return Data(
        x=torch.nn.functional.one_hot(node_label, num_labels).float(),
        edge_index=edge_index,
        y=torch.tensor([y]),
        node_label=node_label,
    )


def _ba_with_motif(motif, count: int, base_nodes: int) -> list:
    """``count`` BA(base_nodes, 1) graphs, each with one ``motif`` attached by one edge (PyG's generators;
    with one edge per new node a BA graph is a tree, give or take the duplicate edges PyG drops)."""
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph

    made = ExplainerDataset(BAGraph(num_nodes=base_nodes, num_edges=1), motif, num_motifs=1, num_graphs=count)
    return [made[i] for i in range(count)]


class BAMotifs(GraphSetDataModule):
    """BA-2motifs made offline: half the graphs are a BA graph with a house attached (class 0), half a
    BA graph with a 5-cycle attached (class 1). Node label = degree, capped at ``max_degree``
    (labels ``0..max_degree``, one-hot features).

    Args:
        num_graphs: graphs in all (half per class); ``base_nodes``: nodes of each BA graph (the
            BA2MotifDataset of the GNNExplainer line uses 500 + 500 graphs of 25 nodes).
        generator_seed: seed of the graphs themselves; ``split_seed``, ``seed`` as in :class:`GraphSetDataModule`.
    """

    num_classes = 2

    def __init__(self, num_graphs: int = 200, base_nodes: int = 25, max_degree: int = 6, generator_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if num_graphs < 10 or num_graphs % 2:
            raise ConfigError(f"num_graphs must be an even number of at least 10, got {num_graphs}")
        if base_nodes < 2 or max_degree < 1:
            raise ConfigError(f"base_nodes must be at least 2 and max_degree at least 1, got {base_nodes}, {max_degree}")
        self.num_graphs = num_graphs
        self.base_nodes = base_nodes
        self.max_degree = max_degree
        self.generator_seed = generator_seed
        self.num_node_features = max_degree + 1

    def make_graphs(self) -> list:
        from torch_geometric.datasets.motif_generator import CycleMotif

        graphs = []
        with seeded(self.generator_seed):
            for y, motif in enumerate(("house", CycleMotif(5))):
                for g in _ba_with_motif(motif, self.num_graphs // 2, self.base_nodes):
                    degree = torch.bincount(g.edge_index[0], minlength=g.num_nodes).clamp(max=self.max_degree)
                    graphs.append(_graph(g.edge_index, degree, self.num_node_features, y))
        return graphs


class LabelledMotifs(GraphSetDataModule):
    """Labelled graphs whose class lies in how a motif's labels are arranged, not in which labels occur.

    Each graph is a BA graph of ``base_nodes`` nodes with uniformly random labels ``0..num_labels-1``
    and a 5-cycle attached by one edge. The cycle's labels read ``0 1 0 1 2`` around the ring in
    class 0 and ``0 0 1 1 2`` in class 1: the same multiset, so counting labels cannot separate the
    classes, but the depth-1 computation trees differ (a ``1`` between two ``0``s exists only in class 0).
    """

    num_classes = 2
    MOTIF_LABELS = ((0, 1, 0, 1, 2), (0, 0, 1, 1, 2))

    def __init__(self, num_graphs: int = 200, base_nodes: int = 20, num_labels: int = 4, generator_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if num_graphs < 10 or num_graphs % 2:
            raise ConfigError(f"num_graphs must be an even number of at least 10, got {num_graphs}")
        if num_labels < 3 or base_nodes < 2:
            raise ConfigError(f"num_labels must be at least 3 and base_nodes at least 2, got {num_labels}, {base_nodes}")
        self.num_graphs = num_graphs
        self.base_nodes = base_nodes
        self.num_node_features = num_labels
        self.generator_seed = generator_seed

    def make_graphs(self) -> list:
        from torch_geometric.datasets.motif_generator import CycleMotif

        graphs = []
        with seeded(self.generator_seed):
            for y, motif_labels in enumerate(self.MOTIF_LABELS):
                for g in _ba_with_motif(CycleMotif(5), self.num_graphs // 2, self.base_nodes):
                    base = torch.randint(0, self.num_node_features, (self.base_nodes,))
                    labels = torch.cat([base, torch.tensor(motif_labels)])
                    graphs.append(_graph(g.edge_index, labels, self.num_node_features, y))
        return graphs


class TUGraphs(GraphSetDataModule):
    """A TU benchmark set (``"MUTAG"``, ``"NCI1"``, …) through PyG's ``TUDataset``: downloads into
    ``root`` when online. Node label = the one-hot node attribute's index.
    """

    def __init__(self, name: str = "MUTAG", root: str = "./data/TUDataset", **kwargs):
        super().__init__(**kwargs)
        self.name = name
        self.root = root

    def prepare_data(self) -> None:
        self._load()

    def _load(self):
        from torch_geometric.datasets import TUDataset

        return TUDataset(self.root, self.name)

    def make_graphs(self) -> list:
        data = self._load()
        self.num_classes = data.num_classes
        self.num_node_features = data.num_node_features
        if not self.num_node_features:
            raise ConfigError(f"{self.name} has no node labels; Mirage and these GNNs need one-hot node labels")
        return [_graph(g.edge_index, g.x.argmax(1), self.num_node_features, int(g.y)) for g in data]


# -- node classification ---------------------------------------------------------------------------
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
