"""Graph-distillation LightningModules, each registered by name (``graph.*``).

- ``graph.glnn`` and ``graph.ff_g2m`` distil a GNN teacher into an MLP student on one graph
  (node classification, full batch). Without a teacher, one is trained first (a 2-layer GCN).
- ``graph.mirage`` is not a gradient method: it mines the training graphs into a distilled set of
  frequent computation-tree sets when the fit starts (emitting the tree histogram as it goes), then
  trains the student GNN on that set and, side by side, a copy of it on the full training graphs.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from ...core.gap import classification_gap
from ...core.module import DistillModule, freeze
from ...core.registry import HParam, register
from . import losses
from .fpgrowth import TooManyItemsets
from .latency import inference_latency
from .mining import (
    DistilledSet,
    TreeMiner,
    build_distilled_set,
    min_count,
    select_tree_sets,
    storage,
)
from .teacher import observed_graph, train_node_classifier

NODE_VIEWS = ("losses", "gap", "latency")
MIRAGE_VIEWS = ("tree_histogram", "distilled_vs_full", "losses")
#: Trees drawn in the live histogram.
TOP_TREES = 20
#: Histogram updates while mining.
MINING_UPDATES = 20
#: Most frequent tree sets per class before Mirage stops and asks for a higher threshold.
MAX_TREE_SETS = 20_000
#: Nodes served alone in the latency measurement.
LATENCY_NODES = 64


def _require(batch: Any, attributes: tuple[str, ...], what: str) -> None:
    missing = [a for a in attributes if getattr(batch, a, None) is None]
    if missing:
        raise ConfigError(f"{what}; the data's batches lack {missing} (got {type(batch).__name__})")


# -- GNN → MLP --------------------------------------------------------------------------------------
def _the_graph(loader):
    """The one graph a node-classification loader yields."""
    return next(iter(loader))


class GNNToMLP(DistillModule):
    """Base of the GNN-to-MLP methods: one graph per batch, a GNN teacher, an MLP student.

    The teacher's logits are computed once (it is frozen): on the observed graph for training and
    validation, on the whole graph for the test nodes (which the inductive setting hides while
    training). At the end of the fit the test gap and the inference latency of teacher and student
    are written to the run (``latency/*`` in milliseconds).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, teacher_epochs: int = 200, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.teacher_epochs = teacher_epochs
        self._teacher_cache: dict[str, torch.Tensor] = {}
        self._node_eval: dict[str, tuple[torch.Tensor, ...]] = {}

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- teacher --------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Without a teacher, train one first: a 2-layer GCN (width 64, dropout 0.5; GLNN's Cora
        teacher) for ``teacher_epochs`` full-batch Adam steps on the observed graph, keeping its best
        validation epoch (:func:`~nbdistill.families.graph.teacher.train_node_classifier`)."""
        if len(self.teachers):
            return
        from ...models.gnn import GCN

        dm = self.trainer.datamodule
        graph = _the_graph(dm.train_dataloader())
        classes = getattr(dm, "num_classes", None) or int(graph.y.max()) + 1
        teacher = GCN(graph.num_node_features, 64, classes, num_layers=2, readout=None, dropout=0.5)
        info = train_node_classifier(teacher, graph, epochs=self.teacher_epochs, seed=torch.initial_seed() % 2**31)
        self.teachers.append(freeze(teacher))
        writer = self._run_writer()
        if writer is not None:
            writer.scalar("teacher/val_acc", info["val_acc"], step=0)

    def _teacher_on(self, graph, which: str) -> torch.Tensor:
        """The teacher's logits of the observed nodes (``"observed"``) or of every node (``"full"``)."""
        key = f"{which}@{graph.x.device}"
        if key not in self._teacher_cache:
            seen = observed_graph(graph) if which == "observed" else graph
            with torch.no_grad():
                self._teacher_cache[key] = self.teacher(seen.x, seen.edge_index).detach()
        return self._teacher_cache[key]

    # -- checks -------------------------------------------------------------------------------
    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        _require(
            batch,
            ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask", "obs_mask"),
            f"{self.method_name} needs node-classification data (one graph with train/val/test masks, e.g. nbdistill.data.graphs.SBM())",
        )
        try:
            with torch.no_grad():
                s = self.student(batch.x[:2])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(f"the student MLP cannot take node features of size {batch.x.shape[-1]}: {exc}") from exc
        if s.dim() != 2:
            raise ConfigError(f"the student must output logits of shape [nodes, classes], got {tuple(s.shape)}")
        if num_classes is not None and s.shape[-1] != num_classes:
            raise ConfigError(f"the data has {num_classes} classes but the student outputs {s.shape[-1]}")
        if len(self.teachers):
            try:
                with torch.no_grad():
                    t = self.teacher(batch.x, batch.edge_index)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise ConfigError(f"the teacher must be a GNN called as teacher(x, edge_index): {exc}") from exc
            if t.shape != (batch.num_nodes, s.shape[-1]):
                raise ConfigError(f"the teacher must output [nodes, {s.shape[-1]}] logits, got {tuple(t.shape)}")

    # -- training -------------------------------------------------------------------------------
    def loss_terms(self, graph: Any) -> dict[str, torch.Tensor]:
        from torch_geometric.utils import remove_self_loops

        seen = observed_graph(graph)
        edges, _ = remove_self_loops(seen.edge_index)
        student = self.student(seen.x)
        return self.distill_loss(student, self._teacher_on(graph, "observed"), seen.y, seen.train_mask, edges)

    # -- evaluation -------------------------------------------------------------------------------
    def _evaluate(self, graph: Any, stage: str) -> None:
        if stage == "val":  # validation nodes are observed: the teacher as it was distilled
            mask = graph.val_mask
            teacher = self._teacher_on(graph, "observed")[mask[graph.obs_mask]]
        else:  # test nodes may be hidden while training: the teacher on the whole graph
            mask = graph.test_mask
            teacher = self._teacher_on(graph, "full")[mask]
        with torch.no_grad():
            student = self.student(graph.x[mask])
        self._node_eval[stage] = (teacher.cpu(), student.cpu(), graph.y[mask].cpu())

    def validation_step(self, graph: Any, batch_idx: int) -> None:
        self._evaluate(graph, "val")

    def test_step(self, graph: Any, batch_idx: int) -> None:
        self._evaluate(graph, "test")

    def evaluation_metrics(self, stage: str) -> dict[str, Any]:
        outputs = self._node_eval.pop(stage, None)
        if outputs is None:
            return {}
        t, s, y = outputs
        return classification_gap(t, s, y, num_classes=s.shape[-1])

    def on_fit_end(self) -> None:
        """The gap on the test nodes (teacher on the whole graph) and the latency of teacher vs student."""
        graph = _the_graph(self.trainer.datamodule.test_dataloader()).to(self.device)
        was_training = self.training
        self.eval()
        self._evaluate(graph, "test")
        metrics = self.evaluation_metrics("test")
        nodes = graph.test_mask.nonzero().flatten()[:LATENCY_NODES]
        latency = inference_latency(self.teacher, self.student, graph, nodes, getattr(self.teacher, "num_layers", 2))
        self.train(was_training)
        writer = self._run_writer()
        if writer is None:
            return
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                writer.scalar(f"test/{name}", value, step=self.global_step)
        self._write_per_class(writer, "test", metrics)
        for name, value in latency.items():
            writer.scalar(f"latency/{name}", value, step=self.global_step)
        writer.flush()


TEACHER_EPOCHS = HParam("teacher_epochs", int, 200, 10, 5000, help="epochs of the GCN teacher trained when none is given")


@register(
    "graph.glnn",
    hparams=[HParam("lam", float, 0.5, 0.0, 1.0, help="weight of the labelled-node CE; 1 − lam weighs the KL to the teacher"), TEACHER_EPOCHS],
    views=NODE_VIEWS,
    needs_teacher=False,
)
class GLNN(GNNToMLP):
    """GLNN: an MLP matches the GNN's soft labels on every node, λ·CE + (1 − λ)·KL (Zhang et al., ICLR 2022).

    λ = 1 is the MLP trained alone on the labelled nodes (the baseline of the comparison).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, lam: float = 0.5, teacher_epochs: int = 200, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(student, teacher, teacher_epochs, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.lam = lam

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index):
        return losses.glnn(student_logits, teacher_logits, labels, label_mask, self.lam)


@register(
    "graph.ff_g2m",
    hparams=[
        HParam("lam", float, 0.4, 0.0, 1.0, help="weight of the labelled-node CE; 1 − lam weighs LFD + HFD"),
        HParam("tau", float, 1.5, 0.1, 10.0, help="temperature of the high-frequency (edge-difference) distributions"),
        TEACHER_EPOCHS,
    ],
    views=NODE_VIEWS,
    needs_teacher=False,
)
class FFG2M(GNNToMLP):
    """FF-G2M: low-frequency (neighbour soft labels) and high-frequency (edge differences) distillation into an MLP (Wu et al., AAAI 2023)."""

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, lam: float = 0.4, tau: float = 1.5, teacher_epochs: int = 200, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(student, teacher, teacher_epochs, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.lam = lam
        self.tau = tau

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index):
        return losses.ff_g2m(student_logits, teacher_logits, labels, label_mask, edge_index, self.lam, self.tau)


# -- Mirage -----------------------------------------------------------------------------------------
def node_labels(batch: Any) -> torch.Tensor:
    """Discrete node labels: ``batch.node_label``, else the index of one-hot ``batch.x``."""
    label = getattr(batch, "node_label", None)
    if label is not None:
        return label.long()
    x = batch.x
    if x.dim() != 2 or not bool(((x == 0) | (x == 1)).all()) or not bool((x.sum(1) == 1).all()):
        raise ConfigError(
            "Mirage hashes discrete node labels: give the graphs a `node_label` attribute or one-hot node features `x`"
        )
    return x.argmax(1)


def _edge_labels(batch: Any) -> torch.Tensor | None:
    label = getattr(batch, "edge_label", None)
    return None if label is None else label.long()


def _roc_auc(logits: torch.Tensor, y: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    if len(torch.unique(y)) < 2:
        return float("nan")
    prob = torch.softmax(logits.float(), -1).numpy()
    if prob.shape[1] == 2:
        return float(roc_auc_score(y.numpy(), prob[:, 1]))
    return float(roc_auc_score(y.numpy(), prob, multi_class="ovr", labels=list(range(prob.shape[1]))))


@register(
    "graph.mirage",
    hparams=[
        HParam("num_hops", int, 2, 1, 4, help="depth L of the computation trees: the GNN's number of layers"),
        HParam("min_support", float, 0.3, 0.01, 1.0, help="share of a class's graphs a tree set must lie in to be kept"),
        HParam("min_tree_count", int, 1, 1, 1000, help="trees seen fewer times in a class are dropped first (the paper's freq_thr)"),
        HParam("max_set_size", int, 0, 0, 20, help="largest tree set mined (0: no limit)"),
        HParam("full_baseline", bool, True, help="also train a copy of the GNN on the full training set, side by side"),
    ],
    views=MIRAGE_VIEWS,
    needs_teacher=False,
)
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

    There is no teacher: the distilled set comes from the data alone (``needs_teacher=False``).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        num_hops: int = 2,
        min_support: float = 0.3,
        min_tree_count: int = 1,
        max_set_size: int = 0,
        full_baseline: bool = True,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        if teacher is not None:
            raise ConfigError("graph.mirage distils the data set itself and takes no teacher")
        super().__init__(student, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.num_hops = num_hops
        self.min_support = min_support
        self.min_tree_count = min_tree_count
        self.max_set_size = max_set_size
        self.full = copy.deepcopy(student) if full_baseline else None
        self.distilled: DistilledSet | None = None
        self.miner: TreeMiner | None = None
        self.summary: dict[str, float] = {}
        self._graph_eval: dict[str, list[tuple[torch.Tensor, ...]]] = {}
        self._best: dict[str, tuple[float, dict]] = {}

    # -- checks -------------------------------------------------------------------------------
    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        _require(
            batch,
            ("x", "edge_index", "y", "batch"),
            "graph.mirage needs graph-classification data (PyG batches of graphs, e.g. nbdistill.data.graphs.BAMotifs())",
        )
        node_labels(batch)
        depth = getattr(self.student, "num_layers", None)
        if depth is not None and depth != self.num_hops:
            raise ConfigError(
                f"num_hops = {self.num_hops} but the student GNN has {depth} layers: Mirage's trees must be as deep "
                "as the GNN (set num_hops or the GNN's num_layers)"
            )
        if getattr(self.student, "readout", "sum") is None:
            raise ConfigError("the student GNN must pool a graph-level readout (readout='sum' or 'mean'), not per-node logits")
        try:
            with torch.no_grad():
                out = self.student(batch.x, batch.edge_index, batch.batch, None)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"the student must be a GNN called as student(x, edge_index, batch, root_mask), e.g. nbdistill.models.gnn.GIN: {exc}"
            ) from exc
        if out.shape[0] != batch.num_graphs:
            raise ConfigError(f"the student must output one logit row per graph, got shape {tuple(out.shape)}")
        if num_classes is not None and out.shape[-1] != num_classes:
            raise ConfigError(f"the data has {num_classes} classes but the student outputs {out.shape[-1]}")

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
                miner.add(node_labels(batch), batch.edge_index, batch.batch, batch.y, batch.x, _edge_labels(batch))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            if writer is not None:
                self._emit_histogram(writer, miner, len(graphs))
        try:
            tree_sets = select_tree_sets(miner, self.min_support, self.min_tree_count, self.max_set_size, MAX_TREE_SETS)
        except TooManyItemsets as exc:
            raise ConfigError(
                f"graph.mirage: min_support = {self.min_support} leaves {exc} in a class; raise min_support or set "
                "max_set_size"
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
        distilled = F.cross_entropy(self.student(d.x, d.edge_index, d.batch, d.root_mask), d.y)
        terms = {"distilled_ce": distilled}
        if self.full is not None:
            terms["full_ce"] = F.cross_entropy(self.full(batch.x, batch.edge_index, batch.batch), batch.y)
        terms["loss"] = sum(terms.values())
        return terms

    # -- evaluation -------------------------------------------------------------------------------
    def _collect_graphs(self, batch: Any, stage: str) -> None:
        with torch.no_grad():
            s = self.student(batch.x, batch.edge_index, batch.batch).cpu()
            f = self.full(batch.x, batch.edge_index, batch.batch).cpu() if self.full is not None else s
        self._graph_eval.setdefault(stage, []).append((s, f, batch.y.cpu()))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._collect_graphs(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._collect_graphs(batch, "test")

    def evaluation_metrics(self, stage: str) -> dict[str, Any]:
        outputs = self._graph_eval.pop(stage, [])
        if not outputs:
            return {}
        s, f, y = (torch.cat(parts) for parts in zip(*outputs))
        metrics = {"student_acc": (s.argmax(-1) == y).float().mean().item(), "student_auc": _roc_auc(s, y)}
        if self.full is not None:
            metrics.update(full_acc=(f.argmax(-1) == y).float().mean().item(), full_auc=_roc_auc(f, y))
        return metrics

    def _models(self) -> dict[str, nn.Module]:
        return {"student": self.student, **({"full": self.full} if self.full is not None else {})}

    def on_validation_epoch_end(self) -> None:
        metrics = self.evaluation_metrics("val")
        if self.trainer.sanity_checking:
            return
        for name, value in metrics.items():
            self.log(f"val/{name}", float(value))
        for who, model in self._models().items():
            score = metrics[f"{who}_auc"] if math.isfinite(metrics[f"{who}_auc"]) else metrics[f"{who}_acc"]
            if score > self._best.get(who, (-math.inf,))[0]:
                self._best[who] = (score, copy.deepcopy(model.state_dict()))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mirage_best"] = self._best

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._best = checkpoint.get("mirage_best", {})

    def on_fit_end(self) -> None:
        """Each GNN takes back its weights of the best validation epoch (ROC-AUC, or accuracy when it is
        undefined), as the paper selects them; then its accuracy and ROC-AUC on the test graphs."""
        for who, model in self._models().items():
            if who in self._best:
                model.load_state_dict(self._best[who][1])
        was_training = self.training
        self.eval()
        for batch in self.trainer.datamodule.test_dataloader():
            self._collect_graphs(batch.to(self.device), "test")
        self.train(was_training)
        metrics = self.evaluation_metrics("test")
        writer = self._run_writer()
        if writer is None:
            return
        for name, value in metrics.items():
            writer.scalar(f"test/{name}", value, step=self.global_step)
        writer.flush()
