"""Graph-distillation LightningModules, each registered by name (``graph.*``).

- ``graph.glnn`` and ``graph.ff_g2m`` distil a GNN teacher into an MLP student on one graph
  (node classification, full batch). Without a teacher, one is trained first (a 2-layer GCN), live
  (``teacher/*`` events, the ``teacher`` view), unless ``lam = 1`` (the MLP alone needs none).
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
from .latency import inference_latency, mlp_latency
from .mining import (
    DistilledSet,
    TreeMiner,
    build_distilled_set,
    min_count,
    select_tree_sets,
    storage,
)
from .teacher import observed_graph, train_node_classifier
from .threshold import accuracy, decision_bias

NODE_VIEWS = ("losses", "gap", "latency", "teacher")
MIRAGE_VIEWS = ("tree_histogram", "distilled_vs_full", "losses")
#: Trees drawn in the live histogram.
TOP_TREES = 20
#: Histogram updates while mining.
MINING_UPDATES = 20
#: Most frequent tree sets per class before Mirage stops and asks for a higher threshold.
MAX_TREE_SETS = 20_000
#: Most teacher epochs written as events (every ``teacher_epochs // TEACHER_EVENTS``-th epoch).
TEACHER_EVENTS = 200
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

    #: Weight of the labelled-node cross-entropy (the subclasses' hyper-parameter); 1 needs no teacher.
    lam: float = 0.0

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        teacher_epochs: int = 200,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.teacher_epochs = teacher_epochs
        self._teacher_cache: dict[str, torch.Tensor] = {}
        self._node_eval: dict[str, tuple[torch.Tensor, ...]] = {}

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- teacher --------------------------------------------------------------------------------
    @property
    def uses_teacher(self) -> bool:
        """Whether the loss reads the teacher (GLNN and FF-G2M: ``lam < 1``; ``lam = 1`` is the MLP alone)."""
        return self.lam < 1.0

    def _unrecorded(self, teacher: nn.Module | None) -> list[str]:
        """Constructor arguments left out of the run's hyper-parameters: the models, and
        ``teacher_epochs`` unless a teacher is trained here (none given and the loss reads one)."""
        return ["student", "teacher"] + ([] if teacher is None and self.uses_teacher else ["teacher_epochs"])

    def setup(self, stage: str) -> None:
        """Without a teacher, train one first (unless the loss never reads it: ``lam = 1``): a 2-layer
        GCN (width 64, dropout 0.5; GLNN's Cora teacher) for ``teacher_epochs`` full-batch Adam steps
        on the observed graph, on the run's device, keeping its best validation epoch
        (:func:`~nbdistill.families.graph.teacher.train_node_classifier`). It streams
        ``teacher/train_loss`` and ``teacher/val_acc`` per epoch (the ``teacher`` view), calls
        ``fit``'s ``progress`` with ``metrics["phase"] == "teacher"`` and shows a progress bar when
        the trainer has one; then ``teacher/best_val_acc``, ``teacher/best_epoch`` and ``teacher/seconds``."""
        if len(self.teachers) or not self.uses_teacher:
            return
        from ...models.gnn import GCN

        dm = self.trainer.datamodule
        graph = _the_graph(dm.train_dataloader())
        classes = getattr(dm, "num_classes", None) or int(graph.y.max()) + 1
        device = self.trainer.strategy.root_device
        teacher = GCN(graph.num_node_features, 64, classes, num_layers=2, readout=None, dropout=0.5).to(device)
        writer = self._run_writer()
        epochs = self.teacher_epochs
        if writer is not None:
            writer.scalar("teacher/epochs", epochs, step=0)
        report, close = self._teacher_progress(writer, epochs)
        start = time.perf_counter()
        try:
            info = train_node_classifier(
                teacher,
                graph.to(device),
                epochs=epochs,
                seed=torch.initial_seed() % 2**31,
                report=report,
                report_every=max(1, epochs // TEACHER_EVENTS),
            )
        finally:
            close()
        seconds = time.perf_counter() - start
        self.teachers.append(freeze(teacher))
        if writer is not None:
            writer.scalar("teacher/best_val_acc", info["val_acc"], step=info["epoch"])
            writer.scalar("teacher/best_epoch", info["epoch"], step=info["epoch"])
            writer.scalar("teacher/seconds", seconds, step=epochs)
            writer.flush()

    def _teacher_progress(self, writer, epochs: int):
        """``(report, close)`` for :func:`train_node_classifier`: events, ``fit``'s progress callback
        (``done`` and ``total`` stay 0: no training step yet) and a tqdm bar when the trainer shows one."""
        from ...core.callbacks import RunControl

        callbacks = [c.progress.report for c in self.trainer.callbacks if isinstance(c, RunControl) and c.progress is not None]
        bar = None
        if self.trainer.progress_bar_callback is not None:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, desc="teacher GCN", unit="epoch", leave=False, dynamic_ncols=True)

        def report(epoch: int, loss: float, val_acc: float) -> None:
            if writer is not None:
                writer.scalar("teacher/train_loss", loss, step=epoch)
                writer.scalar("teacher/val_acc", val_acc, step=epoch)
            metrics = {
                "phase": "teacher",
                "epoch": epoch,
                "epochs": epochs,
                "teacher/train_loss": loss,
                "teacher/val_acc": val_acc,
            }
            for callback in callbacks:
                callback(0, 0, metrics)
            if bar is not None:
                bar.update(epoch - bar.n)
                bar.set_postfix(loss=f"{loss:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)

        def close() -> None:
            if bar is not None:
                bar.close()

        return report, close

    def _teacher_on(self, graph, which: str) -> torch.Tensor:
        """The teacher's logits of the observed nodes (``"observed"``) or of every node (``"full"``)."""
        key = f"{which}@{graph.x.device}"
        if key not in self._teacher_cache:
            seen = observed_graph(graph) if which == "observed" else graph
            with torch.no_grad():
                self._teacher_cache[key] = self.teacher(seen.x, seen.edge_index).detach()
        return self._teacher_cache[key]

    def _teacher_or_none(self, graph, which: str) -> torch.Tensor | None:
        return self._teacher_on(graph, which) if len(self.teachers) else None

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
        teacher = self._teacher_or_none(graph, "observed")
        if teacher is None:  # lam = 1 and no teacher given: the MLP alone on the labelled nodes
            ce = F.cross_entropy(student[seen.train_mask], seen.y[seen.train_mask])
            return {"loss": ce, "ce": ce}
        return self.distill_loss(student, teacher, seen.y, seen.train_mask, edges)

    # -- evaluation -------------------------------------------------------------------------------
    def _evaluate(self, graph: Any, stage: str) -> None:
        mask = graph.val_mask if stage == "val" else graph.test_mask
        with torch.no_grad():
            student = self.student(graph.x[mask])
        if not len(self.teachers):  # the MLP alone: its accuracy only (as the base class does)
            teacher = student
        elif stage == "val":  # validation nodes are observed: the teacher as it was distilled
            teacher = self._teacher_on(graph, "observed")[mask[graph.obs_mask]]
        else:  # test nodes may be hidden while training: the teacher on the whole graph
            teacher = self._teacher_on(graph, "full")[mask]
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
        if len(self.teachers):
            latency = inference_latency(self.teacher, self.student, graph, nodes, getattr(self.teacher, "num_layers", 2))
        else:
            latency = mlp_latency(self.student, graph, nodes)
        self.train(was_training)
        writer = self._run_writer()
        if writer is None:
            return
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and (len(self.teachers) or name == "student_acc"):
                writer.scalar(f"test/{name}", value, step=self.global_step)
        self._write_per_class(writer, "test", metrics)
        for name, value in latency.items():
            writer.scalar(f"latency/{name}", value, step=self.global_step)
        writer.flush()


TEACHER_EPOCHS = HParam("teacher_epochs", int, 200, 10, 5000, help="epochs of the GCN teacher trained when none is given")


@register(
    "graph.glnn",
    hparams=[
        HParam("lam", float, 0.5, 0.0, 1.0, help="weight of the labelled-node CE; 1 − lam weighs the KL to the teacher"),
        TEACHER_EPOCHS,
    ],
    views=NODE_VIEWS,
    needs_teacher=False,
)
class GLNN(GNNToMLP):
    """GLNN: an MLP matches the GNN's soft labels on every node, λ·CE + (1 − λ)·KL (Zhang et al., ICLR 2022).

    λ = 1 is the MLP trained alone on the labelled nodes (the baseline of the comparison).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        lam: float = 0.5,
        teacher_epochs: int = 200,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, teacher_epochs, lr=lr, weight_decay=weight_decay)
        self.lam = lam
        self.save_hyperparameters(ignore=self._unrecorded(teacher))

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

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        lam: float = 0.4,
        tau: float = 1.5,
        teacher_epochs: int = 200,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, teacher_epochs, lr=lr, weight_decay=weight_decay)
        self.lam = lam
        self.save_hyperparameters(ignore=self._unrecorded(teacher))
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


def class_weights(classes: list[int], num_classes: int) -> torch.Tensor:
    r"""Cross-entropy weights that give each class the same total weight in the distilled set,
    :math:`w_c = n / (C' \, n_c)` for the :math:`C'` classes with :math:`n_c > 0` tree sets (0 for
    the others): a class that happens to have many frequent tree sets would otherwise dominate."""
    counts = torch.bincount(torch.tensor(classes, dtype=torch.long), minlength=num_classes).float()
    present = counts > 0
    weight = torch.zeros(num_classes)
    weight[present] = counts.sum() / (present.sum() * counts[present])
    return weight


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
        HParam(
            "min_tree_count", int, 1, 1, 1000, help="trees seen fewer times in a class are dropped first (the paper's freq_thr)"
        ),
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

    The distilled cross-entropy weighs each class's tree sets equally (:func:`class_weights`: one
    class often has many more frequent tree sets than another). The test accuracy is taken with each
    GNN's decision threshold set on the validation graphs (:mod:`.threshold`; ``*_acc_argmax`` is the
    plain argmax's): the distilled set holds no tree common to both classes, yet a real graph pools
    many, which shifts its logits; the ranking (ROC-AUC) stays good while the argmax can put nearly
    every graph in one class.

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
        self._class_weight: torch.Tensor | None = None
        #: each GNN's decision bias, set on the validation graphs when the fit ends (see :mod:`.threshold`)
        self.biases: dict[str, torch.Tensor] = {}

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
        self._class_weight = class_weights(distilled.classes, num_classes)
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
        distilled = F.cross_entropy(self.student(d.x, d.edge_index, d.batch, d.root_mask), d.y, weight=weight)
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

    def evaluation_metrics(self, stage: str, biases: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """``{who}_acc`` and ``{who}_auc`` of each GNN on what ``stage`` collected; with ``biases``
        (:func:`~.threshold.decision_bias` per GNN) the accuracy is that of ``argmax(logits + bias)``
        and ``{who}_acc_argmax`` the plain argmax's."""
        outputs = self._graph_eval.pop(stage, [])
        if not outputs:
            return {}
        s, f, y = (torch.cat(parts) for parts in zip(*outputs))
        metrics: dict[str, Any] = {}
        for who, logits in (("student", s), ("full", f)) if self.full is not None else (("student", s),):
            bias = (biases or {}).get(who)
            metrics[f"{who}_acc"] = accuracy(logits, y, bias)
            if bias is not None:
                metrics[f"{who}_acc_argmax"] = accuracy(logits, y)
            metrics[f"{who}_auc"] = _roc_auc(logits, y)
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
        if self.distilled is not None:  # what Run.distilled() returns; plain tensors, loadable with weights_only
            checkpoint["mirage_distilled"] = {
                "graphs": [dict(g.to_dict()) for g in self.distilled.graphs],
                "classes": list(self.distilled.classes),
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._best = checkpoint.get("mirage_best", {})

    def decision_biases(self, loader) -> dict[str, torch.Tensor]:
        """Each GNN's decision bias (:func:`~.threshold.decision_bias`) on the graphs of ``loader``
        (the validation graphs): the distilled set never shows the trees common to all classes, which
        shift a real graph's logits (see :mod:`.threshold`)."""
        was_training = self.training
        self.eval()
        for batch in loader:
            self._collect_graphs(batch.to(self.device), "calibration")
        self.train(was_training)
        outputs = self._graph_eval.pop("calibration", [])
        if not outputs:
            return {}
        s, f, y = (torch.cat(parts) for parts in zip(*outputs))
        return {who: decision_bias(logits, y) for who, logits in (("student", s), ("full", f)) if who in self._models()}

    def on_fit_end(self) -> None:
        """Each GNN takes back its weights of the best validation epoch (ROC-AUC, or accuracy when it is
        undefined), as the paper selects them, and its decision threshold set on the validation graphs
        (:mod:`.threshold`); then its accuracy (``{who}_acc``, and ``{who}_acc_argmax`` without the
        threshold) and ROC-AUC on the test graphs."""
        for who, model in self._models().items():
            if who in self._best:
                model.load_state_dict(self._best[who][1])
        dm = self.trainer.datamodule
        self.biases = self.decision_biases(dm.val_dataloader())
        was_training = self.training
        self.eval()
        for batch in dm.test_dataloader():
            self._collect_graphs(batch.to(self.device), "test")
        self.train(was_training)
        metrics = self.evaluation_metrics("test", self.biases)
        writer = self._run_writer()
        if writer is None:
            return
        for name, value in metrics.items():
            writer.scalar(f"test/{name}", value, step=self.global_step)
        writer.flush()
