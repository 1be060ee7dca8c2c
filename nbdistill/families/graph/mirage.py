"""``graph.mirage``: a graph data set distilled into frequent computation-tree sets (Gupta et al., ICLR 2024).

Not a gradient method: it mines the training graphs into a distilled set of frequent
computation-tree sets when the fit starts (emitting the tree histogram as it goes, :mod:`.mining`),
then trains the student GNN on that set and, side by side, a copy of it on the full training graphs.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.module import DistillModule
from ...core.registry import HParam, register
from . import losses
from .evaluation import GraphGap
from .fpgrowth import TooManyItemsets
from .mining import (
    DistilledSet,
    TreeMiner,
    build_distilled_set,
    edge_labels,
    min_count,
    node_labels,
    select_tree_sets,
    storage,
)

MIRAGE_VIEWS = ("tree_histogram", "distilled_vs_full", "losses")
#: Trees drawn in the live histogram.
TOP_TREES = 20
#: Histogram updates while mining.
MINING_UPDATES = 20
#: Most frequent tree sets per class before Mirage stops and asks for a higher threshold.
MAX_TREE_SETS = 20_000


@register("graph.mirage", views=MIRAGE_VIEWS, needs_teacher=False)
class Mirage(DistillModule):
    """Mirage: a graph data set distilled into frequent computation-tree sets, model-agnostic (Gupta et al., ICLR 2024).

    ``nd.fit("graph.mirage", student=GIN(...), data=BAMotifs())`` mines the training graphs when the
    fit starts (see :mod:`.mining`): ``mirage/tree_support`` histograms stream out while it counts,
    then the distilled set's size against the full set's (``mirage/*`` scalars, a ``mirage/compression``
    table). Each training step then takes one batch of distilled graphs for the student (pooling the
    tree roots only) and, with ``full_baseline``, the incoming batch of real graphs for ``full``, a
    copy of the student made before training (same initial weights). Both are evaluated on the
    original validation graphs each epoch and, with the weights of their best validation epoch, on the
    test graphs at the end: ``student_*`` is the GNN trained on the distilled set, ``full_*`` the one
    trained on the full set (accuracy and ROC-AUC).

    The distilled cross-entropy weighs each class's tree sets equally (:func:`~.losses.class_weights`:
    one class often has many more frequent tree sets than another). The test accuracy is taken with
    each GNN's decision threshold set on the validation graphs (:class:`~.evaluation.GraphGap`,
    :mod:`.threshold`; ``*_acc_argmax`` is the plain argmax's): the distilled set holds no tree
    common to both classes, yet a real graph pools many, which shifts its logits; the ranking
    (ROC-AUC) stays good while the argmax can put nearly every graph in one class.

    There is no teacher: the distilled set comes from the data alone (``needs_teacher=False``).
    """

    num_hops = HParam(int, 2, 1, 4, help="depth L of the computation trees: the GNN's number of layers")
    min_support = HParam(float, 0.3, 0.01, 1.0, help="share of a class's graphs a tree set must lie in to be kept")
    min_tree_count = HParam(int, 1, 1, 1000, help="trees seen fewer times in a class are dropped first (the paper's freq_thr)")
    max_set_size = HParam(int, 0, 0, 20, help="largest tree set mined (0: no limit)")
    full_baseline = HParam(bool, True, help="also train a copy of the GNN on the full training set, side by side")
    evaluation_class = GraphGap

    def build_parts(self) -> None:
        if len(self.teachers):
            raise ConfigError("graph.mirage distils the data set itself and takes no teacher")
        super().build_parts()
        self.full = copy.deepcopy(self.student) if self.full_baseline else None
        self.distilled: DistilledSet | None = None
        self.miner: TreeMiner | None = None
        self.summary: dict[str, float] = {}
        #: each GNN's (score, weights) of its best validation epoch so far (see :meth:`keep_best`)
        self._best: dict[str, tuple[float, dict]] = {}
        self._class_weight: torch.Tensor | None = None

    @property
    def biases(self) -> dict[str, torch.Tensor]:
        """Each GNN's decision bias, set on the validation graphs when the fit ends (see :mod:`.threshold`)."""
        return self.evaluation.biases

    # -- checks -------------------------------------------------------------------------------
    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        """The evaluation's checks (graph-classification data, a GNN student), then what mining needs:
        discrete node labels, and trees as deep as the GNN."""
        super().check_compatibility(batch, num_classes)
        node_labels(batch)
        depth = getattr(self.student, "num_layers", None)
        if depth is not None and depth != self.num_hops:
            raise ConfigError(
                f"num_hops = {self.num_hops} but the student GNN has {depth} layers: Mirage's trees must be as deep "
                "as the GNN (set num_hops or the GNN's num_layers)"
            )

    def check_data(self, data) -> None:
        """Mining reads the whole training set when the fit starts: the data module's ``num_classes`` and
        the graphs of its training loader (``train_dataloader().dataset``)."""
        if getattr(data, "num_classes", None) is None:
            raise ConfigError(
                f"graph.mirage mines the graphs of each class, but the data module {type(data).__name__} has no "
                "num_classes; set it (e.g. self.num_classes = 2) or pass the graphs as a list (data=[Data, ...])"
            )
        if getattr(data.train_dataloader(), "dataset", None) is None:
            raise ConfigError(
                f"graph.mirage mines the training graphs, but the training loader of {type(data).__name__} has no "
                "dataset; return a torch_geometric.loader.DataLoader over a list of graphs from train_dataloader()"
            )

    # -- distillation -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.distilled is None:
            self.distill(self.trainer.datamodule.train_dataloader().dataset, self.trainer.datamodule.num_classes)

    def distill(self, graphs, num_classes: int) -> DistilledSet:
        """Mine ``graphs`` (the training set) into the distilled set, emitting the histogram as it goes."""
        from torch_geometric.loader import DataLoader

        writer = self._run_writer()
        start = time.perf_counter()
        miner = TreeMiner(self.num_hops, num_classes)
        chunk = max(1, math.ceil(len(graphs) / MINING_UPDATES))
        for batch in DataLoader(graphs, batch_size=chunk):
            try:
                miner.add(node_labels(batch), batch.edge_index, batch.batch, batch.y, batch.x, edge_labels(batch))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            if writer is not None:
                self._emit_histogram(writer, miner, len(graphs))
        try:
            tree_sets = select_tree_sets(miner, self.min_support, self.min_tree_count, self.max_set_size, MAX_TREE_SETS)
        except TooManyItemsets as exc:
            raise ConfigError(
                f"graph.mirage: min_support = {self.min_support} leaves {exc} in a class; raise min_support or set max_set_size"
            ) from exc
        distilled = build_distilled_set(miner, tree_sets)
        seconds = time.perf_counter() - start
        if not distilled.graphs:
            raise ConfigError(
                f"graph.mirage: no tree set is frequent (min_support = {self.min_support}, min_tree_count = "
                f"{self.min_tree_count}) in one class and not in another; lower the thresholds"
            )
        full, small = storage(graphs), storage(distilled.graphs)
        self.summary = {
            "distill_seconds": seconds,
            "compression_bytes": full["bytes"] / small["bytes"],
            "compression_nodes": full["nodes"] / small["nodes"],
            "compression_edges": full["edges"] / max(small["edges"], 1),
            "distinct_trees": float(len(miner.codes)),
            **{f"distilled_{k}": float(v) for k, v in small.items()},
            **{f"full_{k}": float(v) for k, v in full.items()},
        }
        self.miner, self.distilled = miner, distilled
        self._class_weight = losses.class_weights(distilled.classes, num_classes)
        if writer is not None:
            for name, value in self.summary.items():
                writer.scalar(f"mirage/{name}", value, step=0)
            per_class = [distilled.classes.count(c) for c in range(num_classes)]
            writer.table(
                "mirage/compression",
                ["set", "graphs", "nodes", "edges", "bytes"],
                [["full", *full.values()], ["distilled", *small.values()]]
                + [[f"class {c} tree sets", n, "", "", ""] for c, n in enumerate(per_class)],
                step=0,
            )
            writer.flush()
        return distilled

    def _emit_histogram(self, writer, miner: TreeMiner, total: int) -> None:
        codes, per_class = miner.top_trees(TOP_TREES)
        sizes = miner.class_sizes()
        writer.histogram(
            "mirage/tree_support",
            [sum(col) for col in zip(*per_class)] if codes else [],
            step=0,
            per_class=per_class,
            trees=[miner.codes.describe(c) for c in codes],
            thresholds=[min_count(self.min_support, n) for n in sizes],
            class_sizes=sizes,
            graphs=miner.graphs_seen,
            total_graphs=total,
            distinct_trees=len(miner.codes),
        )

    def _distilled_batch(self, size: int):
        from torch_geometric.data import Batch

        graphs = self.distilled.graphs
        if len(graphs) <= size:
            chosen = graphs
        else:
            g = torch.Generator().manual_seed(int(self.global_step) * 7919 + 17)
            chosen = [graphs[i] for i in torch.randperm(len(graphs), generator=g)[:size].tolist()]
        return Batch.from_data_list(chosen).to(self.device)

    # -- training -------------------------------------------------------------------------------
    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        d = self._distilled_batch(batch.num_graphs)
        weight = None if self._class_weight is None else self._class_weight.to(self.device)
        distilled = self.student(d.x, d.edge_index, d.batch, d.root_mask)
        full = self.full(batch.x, batch.edge_index, batch.batch) if self.full is not None else None
        return losses.mirage(distilled, d.y, weight, full, batch.y)

    # -- model selection ----------------------------------------------------------------------------
    def keep_best(self, metrics: dict[str, Any]) -> None:
        """Remember each GNN's weights when this validation epoch is its best so far (ROC-AUC, or the
        accuracy where it is undefined), as the paper selects them; :class:`~.evaluation.GraphGap`
        calls it with each validation epoch's metrics."""
        for who, model in GraphGap.models(self).items():
            score = metrics[f"{who}_auc"] if math.isfinite(metrics[f"{who}_auc"]) else metrics[f"{who}_acc"]
            if score > self._best.get(who, (-math.inf,))[0]:
                self._best[who] = (score, copy.deepcopy(model.state_dict()))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mirage_best"] = self._best
        if self.distilled is not None:  # what Run.distilled() returns; plain tensors, loadable with weights_only
            checkpoint["mirage_distilled"] = {
                "graphs": [dict(g.to_dict()) for g in self.distilled.graphs],
                "classes": list(self.distilled.classes),
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._best = checkpoint.get("mirage_best", {})

    def on_fit_end(self) -> None:
        """Each GNN takes back its weights of the best validation epoch (see :meth:`keep_best`); then
        the base evaluates them on the test graphs (:class:`~.evaluation.GraphGap`: each GNN's
        decision threshold is set on the validation graphs first)."""
        for who, model in GraphGap.models(self).items():
            if who in self._best:
                model.load_state_dict(self._best[who][1])
        super().on_fit_end()
