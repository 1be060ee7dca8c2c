"""Graph classification data sets: a list of small graphs, one label each; node features are one-hot
node labels, which Mirage hashes.

- :class:`BAMotifs` — BA-2motifs built offline with PyG's ``ExplainerDataset``: a Barabási–Albert
  graph with a *house* motif attached (class 0) or a *5-cycle* (class 1); node label = degree.
- :class:`LabelledMotifs` — random "atom" labels on a BA graph plus a 5-cycle whose labels are the
  same multiset in both classes but arranged differently, so only the computation trees tell them apart.
- :class:`TUGraphs` — the TU benchmark sets (MUTAG, NCI1, …) through PyG's ``TUDataset`` (downloads).
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from ..core.errors import ConfigError
from .base import check_fractions, split_by_class
from .sampling import EpochSeededSampler, seeded


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
        check_fractions(val_fraction, test_fraction)
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
        graphs = self.make_graphs()
        labels = np.array([int(g.y) for g in graphs])
        parts = split_by_class(labels, self.val_fraction, self.test_fraction, self.split_seed, "graphs")
        self._splits = {name: [graphs[i] for i in sorted(part)] for name, part in zip(("train", "val", "test"), parts)}
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


class MotifGraphs(GraphSetDataModule):
    """Graphs made offline as a BA(``base_nodes``, 1) graph with one motif attached by one edge, half
    per class (PyG's ``ExplainerDataset``; with one edge per new node a BA graph is a tree, give or
    take the duplicate edges PyG drops), seeded by ``generator_seed``.

    Subclasses give each class's motif (:meth:`motifs`) and each graph's node labels (:meth:`node_labels`).
    """

    num_classes = 2

    def __init__(self, num_graphs: int, base_nodes: int, generator_seed: int, **kwargs):
        super().__init__(**kwargs)
        if num_graphs < 10 or num_graphs % 2:
            raise ConfigError(f"num_graphs must be an even number of at least 10, got {num_graphs}")
        self.num_graphs = num_graphs
        self.base_nodes = base_nodes
        self.generator_seed = generator_seed

    def motifs(self) -> list:
        """The motif of each class (a PyG motif generator or its name), class 0 first."""
        raise NotImplementedError

    def node_labels(self, graph, y: int) -> torch.Tensor:
        """The node labels ``0..num_node_features-1`` of ``graph`` (of class ``y``)."""
        raise NotImplementedError

    def make_graphs(self) -> list:
        from torch_geometric.datasets import ExplainerDataset
        from torch_geometric.datasets.graph_generator import BAGraph

        graphs, count = [], self.num_graphs // 2
        with seeded(self.generator_seed):
            for y, motif in enumerate(self.motifs()):
                made = ExplainerDataset(BAGraph(num_nodes=self.base_nodes, num_edges=1), motif, num_motifs=1, num_graphs=count)
                for g in (made[i] for i in range(count)):
                    graphs.append(_graph(g.edge_index, self.node_labels(g, y), self.num_node_features, y))
        return graphs


class BAMotifs(MotifGraphs):
    """BA-2motifs made offline: half the graphs are a BA graph with a house attached (class 0), half a
    BA graph with a 5-cycle attached (class 1). Node label = degree, capped at ``max_degree``
    (labels ``0..max_degree``, one-hot features).

    Args:
        num_graphs: graphs in all (half per class); ``base_nodes``: nodes of each BA graph (the
            BA2MotifDataset of the GNNExplainer line uses 500 + 500 graphs of 25 nodes).
        generator_seed: seed of the graphs themselves; ``split_seed``, ``seed`` as in :class:`GraphSetDataModule`.
    """

    def __init__(self, num_graphs: int = 200, base_nodes: int = 25, max_degree: int = 6, generator_seed: int = 0, **kwargs):
        super().__init__(num_graphs, base_nodes, generator_seed, **kwargs)
        if base_nodes < 2 or max_degree < 1:
            raise ConfigError(f"base_nodes must be at least 2 and max_degree at least 1, got {base_nodes}, {max_degree}")
        self.max_degree = max_degree
        self.num_node_features = max_degree + 1

    def motifs(self) -> list:
        from torch_geometric.datasets.motif_generator import CycleMotif

        return ["house", CycleMotif(5)]

    def node_labels(self, graph, y: int) -> torch.Tensor:
        return torch.bincount(graph.edge_index[0], minlength=graph.num_nodes).clamp(max=self.max_degree)


class LabelledMotifs(MotifGraphs):
    """Labelled graphs whose class lies in how a motif's labels are arranged, not in which labels occur.

    Each graph is a BA graph of ``base_nodes`` nodes with uniformly random labels ``0..num_labels-1``
    and a 5-cycle attached by one edge. The cycle's labels read ``0 1 0 1 2`` around the ring in
    class 0 and ``0 0 1 1 2`` in class 1: the same multiset, so counting labels cannot separate the
    classes, but the depth-1 computation trees differ (a ``1`` between two ``0``s exists only in class 0).
    """

    MOTIF_LABELS = ((0, 1, 0, 1, 2), (0, 0, 1, 1, 2))

    def __init__(self, num_graphs: int = 200, base_nodes: int = 20, num_labels: int = 4, generator_seed: int = 0, **kwargs):
        super().__init__(num_graphs, base_nodes, generator_seed, **kwargs)
        if num_labels < 3 or base_nodes < 2:
            raise ConfigError(f"num_labels must be at least 3 and base_nodes at least 2, got {num_labels}, {base_nodes}")
        self.num_node_features = num_labels

    def motifs(self) -> list:
        from torch_geometric.datasets.motif_generator import CycleMotif

        return [CycleMotif(5) for _ in self.MOTIF_LABELS]

    def node_labels(self, graph, y: int) -> torch.Tensor:
        base = torch.randint(0, self.num_node_features, (self.base_nodes,))
        return torch.cat([base, torch.tensor(self.MOTIF_LABELS[y])])


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
