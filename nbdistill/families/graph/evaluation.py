r"""What "the gap" is in the graph family: the evaluation hooks of its methods (see :mod:`nbdistill.core.evaluation`).

- :class:`NodeGap` (GLNN, FF-G2M): the classification gap of teacher and student on the nodes of
  one graph: on the validation nodes the GNN teacher as it was distilled (on the observed graph),
  on the test nodes, which the inductive setting hides while training, the teacher on the whole graph.
- :class:`GraphGap` (Mirage): accuracy and ROC-AUC of the GNN trained on the distilled set
  (``student``) and of its copy trained on the full set (``full``); on the test graphs the accuracy
  is taken with each GNN's decision threshold set on the validation graphs (:mod:`.threshold`),
  ``{who}_acc_argmax`` being the plain argmax's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.evaluation import ClassificationGap, Evaluation
from .threshold import accuracy, decision_bias


def require(batch: Any, attributes: tuple[str, ...], what: str) -> None:
    """A :class:`ConfigError` saying ``what`` unless ``batch`` has every one of ``attributes``."""
    missing = [a for a in attributes if getattr(batch, a, None) is None]
    if missing:
        raise ConfigError(f"{what}; the data's batches lack {missing} (got {type(batch).__name__})")


def the_graph(loader: Iterable) -> Any:
    """The one graph a node-classification loader yields."""
    return next(iter(loader))


class NodeGap(ClassificationGap):
    """:class:`~nbdistill.core.evaluation.ClassificationGap` of a GNN teacher and an MLP student on one
    graph's nodes (a batch is the whole graph; the module gives ``gnn_logits(graph, "observed" | "full")``)."""

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """One graph with its masks; the student maps node features to ``[nodes, classes]`` logits and
        the teacher, a GNN called as ``teacher(x, edge_index)``, gives as many for every node."""
        require(
            batch,
            ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask", "obs_mask"),
            f"{module.method_name} needs node-classification data (one graph with train/val/test masks, e.g. nbdistill.data.graphs.SBM())",
        )
        try:
            with torch.no_grad():
                s = module.student(batch.x[:2])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(f"the student MLP cannot take node features of size {batch.x.shape[-1]}: {exc}") from exc
        if s.dim() != 2:
            raise ConfigError(f"the student must output logits of shape [nodes, classes], got {tuple(s.shape)}")
        if num_classes is not None and s.shape[-1] != num_classes:
            raise ConfigError(f"the data has {num_classes} classes but the student outputs {s.shape[-1]}")
        if len(module.teachers):
            try:
                with torch.no_grad():
                    t = module.teacher(batch.x, batch.edge_index)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise ConfigError(f"the teacher must be a GNN called as teacher(x, edge_index): {exc}") from exc
            if t.shape != (batch.num_nodes, s.shape[-1]):
                raise ConfigError(f"the teacher must output [nodes, {s.shape[-1]}] logits, got {tuple(t.shape)}")

    def collect(self, module: Any, graph: Any, stage: str) -> None:
        mask = graph.val_mask if stage == "val" else graph.test_mask
        with torch.no_grad():
            student = module.student(graph.x[mask])
        if not len(module.teachers):  # the MLP alone: its accuracy only (see ClassificationGap.scalars)
            teacher = student
        elif stage == "val":  # validation nodes are observed: the teacher as it was distilled
            teacher = module.gnn_logits(graph, "observed")[mask[graph.obs_mask]]
        else:  # test nodes may be hidden while training: the teacher on the whole graph
            teacher = module.gnn_logits(graph, "full")[mask]
        self.outputs.setdefault(stage, []).append((teacher.cpu(), student.cpu(), graph.y[mask].cpu()))

    def gathered(self, module: Any, stage: str) -> tuple[torch.Tensor, ...] | None:
        """What ``stage`` collected; nothing is gathered across processes: each holds the whole graph."""
        outputs = self.outputs.pop(stage, [])
        return tuple(torch.cat(p) for p in zip(*outputs)) if outputs else None

    def test_batches(self, module: Any, datamodule: Any) -> Iterator[Any]:
        yield the_graph(datamodule.test_dataloader()).to(module.device)


class GraphGap(Evaluation):
    """Graph classification by the GNN trained on the distilled set and by its copy trained on the full set.

    ``compute`` of a validation epoch hands the metrics to ``module.keep_best`` (each GNN's best
    epoch's weights are the ones tested, as the paper selects them). Before the test graphs, each
    GNN's decision bias is set on the validation graphs (:meth:`calibrate`, kept in :attr:`biases`).
    """

    def __init__(self) -> None:
        super().__init__()
        #: each GNN's decision bias (:func:`~.threshold.decision_bias`), set on the validation graphs
        self.biases: dict[str, torch.Tensor] = {}

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """PyG batches of graphs, and a student GNN giving one logit row per graph from them."""
        require(
            batch,
            ("x", "edge_index", "y", "batch"),
            f"{module.method_name} needs graph-classification data (PyG batches of graphs, e.g. nbdistill.data.graphs.BAMotifs())",
        )
        if getattr(module.student, "readout", "sum") is None:
            raise ConfigError("the student GNN must pool a graph-level readout (readout='sum' or 'mean'), not per-node logits")
        try:
            with torch.no_grad():
                out = module.student(batch.x, batch.edge_index, batch.batch, None)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"the student must be a GNN called as student(x, edge_index, batch, root_mask), e.g. nbdistill.models.gnn.GIN: {exc}"
            ) from exc
        if out.shape[0] != batch.num_graphs:
            raise ConfigError(f"the student must output one logit row per graph, got shape {tuple(out.shape)}")
        if num_classes is not None and out.shape[-1] != num_classes:
            raise ConfigError(f"the data has {num_classes} classes but the student outputs {out.shape[-1]}")

    @staticmethod
    def models(module: Any) -> dict[str, nn.Module]:
        """The GNNs evaluated: ``student`` and, with the full baseline, ``full``."""
        return {"student": module.student, **({"full": module.full} if module.full is not None else {})}

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        with torch.no_grad():
            logits = [model(batch.x, batch.edge_index, batch.batch).cpu() for model in self.models(module).values()]
        self.outputs.setdefault(stage, []).append((*logits, batch.y.cpu()))

    def _logits(self, module: Any, stage: str) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
        """Each GNN's logits and the labels ``stage`` collected (and forget them), or None."""
        outputs = self.outputs.pop(stage, [])
        if not outputs:
            return None
        *logits, y = (torch.cat(parts) for parts in zip(*outputs))
        return dict(zip(self.models(module), logits)), y

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        """``{who}_acc`` and ``{who}_auc`` of each GNN; on the test graphs with :attr:`biases` the
        accuracy is that of ``argmax(logits + bias)`` and ``{who}_acc_argmax`` the plain argmax's."""
        collected = self._logits(module, stage)
        if collected is None:
            return {}
        logits, y = collected
        biases = self.biases if stage == "test" else {}
        metrics: dict[str, Any] = {}
        for who, z in logits.items():
            bias = biases.get(who)
            metrics[f"{who}_acc"] = accuracy(z, y, bias)
            if bias is not None:
                metrics[f"{who}_acc_argmax"] = accuracy(z, y)
            metrics[f"{who}_auc"] = roc_auc(z, y)
        if stage == "val":
            module.keep_best(metrics)
        return metrics

    def calibrate(self, module: Any, batches: Iterable[Any]) -> dict[str, torch.Tensor]:
        """Set :attr:`biases`: each GNN's decision bias on ``batches`` (the validation graphs). The
        distilled set never shows the trees common to all classes, which shift a real graph's logits
        (see :mod:`.threshold`)."""
        was_training = module.training
        module.eval()
        for batch in batches:
            self.collect(module, batch.to(module.device), "calibration")
        module.train(was_training)
        collected = self._logits(module, "calibration")
        self.biases = {} if collected is None else {who: decision_bias(z, collected[1]) for who, z in collected[0].items()}
        return self.biases

    def test_batches(self, module: Any, datamodule: Any) -> Iterator[Any]:
        """The test graphs, once :meth:`calibrate` has set the decision biases on the validation graphs."""
        self.calibrate(module, datamodule.val_dataloader())
        for batch in datamodule.test_dataloader():
            yield batch.to(module.device)


def roc_auc(logits: torch.Tensor, y: torch.Tensor) -> float:
    """ROC-AUC of the softmax of ``logits`` (one-vs-rest over more than two classes); NaN with one class in ``y``."""
    from sklearn.metrics import roc_auc_score

    if len(torch.unique(y)) < 2:
        return float("nan")
    prob = torch.softmax(logits.float(), -1).numpy()
    if prob.shape[1] == 2:
        return float(roc_auc_score(y.numpy(), prob[:, 1]))
    return float(roc_auc_score(y.numpy(), prob, multi_class="ovr", labels=list(range(prob.shape[1]))))
