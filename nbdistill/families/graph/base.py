"""``GNNToMLP``: the base of the GNN-to-MLP methods (``graph.glnn``, ``graph.ff_g2m``).

A GNN teacher, an MLP student on the node features, one graph per batch (node classification,
full batch). Without a teacher, one is trained first (a 2-layer GCN), live (``teacher/*`` events,
the ``teacher`` view), unless ``lam = 1`` (the MLP alone needs none).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ...core.module import DistillModule, freeze
from ...core.registry import HParam
from . import losses
from .evaluation import NodeGap, the_graph
from .latency import inference_latency, mlp_latency
from .teacher import observed_graph, train_node_classifier

#: The views of the GNN-to-MLP methods.
NODE_VIEWS = ("losses", "gap", "latency", "teacher")
#: Most teacher epochs written as events (every ``teacher_epochs // TEACHER_EVENTS``-th epoch).
TEACHER_EVENTS = 200
#: Nodes served alone in the latency measurement.
LATENCY_NODES = 64


class GNNToMLP(DistillModule):
    """Base of the GNN-to-MLP methods: one graph per batch, a GNN teacher, an MLP student.

    The teacher's logits are computed once (it is frozen): on the observed graph for training and
    validation, on the whole graph for the test nodes (which the inductive setting hides while
    training; :class:`~.evaluation.NodeGap`). At the end of the fit the test gap and the inference
    latency of teacher and student are written to the run (``latency/*`` in milliseconds).

    A method declares ``lam``, the weight of the labelled-node cross-entropy (1 needs no teacher),
    and writes :meth:`distill_loss`.
    """

    teacher_epochs = HParam(int, 200, 10, 5000, help="epochs of the GCN teacher trained when none is given")
    evaluation_class = NodeGap
    lam: float

    def build_parts(self) -> None:
        super().build_parts()
        #: the GNN teacher's logits of the observed graph and of the whole graph, per device (see :meth:`gnn_logits`)
        self._gnn_logits: dict[str, torch.Tensor] = {}
        if len(self.teachers) or not self.uses_teacher:  # no teacher is trained here: teacher_epochs has no effect
            self.hparams.pop("teacher_epochs")
            self.save_hyperparameters(self.hparams)  # (and in the copy the run records)

    def distill_loss(self, student_logits, teacher_logits, labels, label_mask, edge_index) -> dict[str, torch.Tensor]:
        """The method's loss terms on the observed graph (``edge_index`` without self-loops)."""
        raise NotImplementedError

    # -- teacher --------------------------------------------------------------------------------
    @property
    def uses_teacher(self) -> bool:
        """Whether the loss reads the teacher (GLNN and FF-G2M: ``lam < 1``; ``lam = 1`` is the MLP alone)."""
        return self.lam < 1.0

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
        graph = the_graph(dm.train_dataloader())
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

    def gnn_logits(self, graph, which: str) -> torch.Tensor:
        """The teacher's logits of the observed nodes (``"observed"``) or of every node (``"full"``),
        computed once per device (the teacher is frozen)."""
        key = f"{which}@{graph.x.device}"
        if key not in self._gnn_logits:
            seen = observed_graph(graph) if which == "observed" else graph
            with torch.no_grad():
                self._gnn_logits[key] = self.teacher(seen.x, seen.edge_index).detach()
        return self._gnn_logits[key]

    # -- training -------------------------------------------------------------------------------
    def loss_terms(self, graph: Any) -> dict[str, torch.Tensor]:
        from torch_geometric.utils import remove_self_loops

        seen = observed_graph(graph)
        edges, _ = remove_self_loops(seen.edge_index)
        student = self.student(seen.x)
        if not len(self.teachers):  # lam = 1 and no teacher given: the MLP alone on the labelled nodes
            return losses.labelled_ce(student, seen.y, seen.train_mask)
        return self.distill_loss(student, self.gnn_logits(graph, "observed"), seen.y, seen.train_mask, edges)

    # -- end of fit -------------------------------------------------------------------------------
    def on_fit_end(self) -> None:
        """The gap on the test nodes (the base's evaluation), then the latency of teacher vs student."""
        super().on_fit_end()
        dm = getattr(self.trainer, "datamodule", None)
        writer = self._run_writer()
        if dm is None or writer is None:
            return
        graph = next(iter(self.evaluation.test_batches(self, dm)))
        nodes = graph.test_mask.nonzero().flatten()[:LATENCY_NODES]
        if len(self.teachers):
            latency = inference_latency(self.teacher, self.student, graph, nodes, getattr(self.teacher, "num_layers", 2))
        else:
            latency = mlp_latency(self.student, graph, nodes)
        for name, value in latency.items():
            writer.scalar(f"latency/{name}", value, step=self.global_step)
        writer.flush()
