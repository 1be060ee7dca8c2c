"""The graph family on the core contract: declared hyper-parameters, its own evaluation hooks (NodeGap,
GraphGap) instead of overridden Lightning steps, and the GNN teacher's outputs under their own name."""

import pytest
import pytorch_lightning as pl
import torch

import nbdistill as nd
from nbdistill.core.module import DistillModule
from nbdistill.data.graphs import SBM, BAMotifs, KarateClub
from nbdistill.families.graph.evaluation import GraphGap, NodeGap
from nbdistill.families.graph.teacher import observed_graph
from nbdistill.families.graph.threshold import accuracy
from nbdistill.models import MLP
from nbdistill.models.gnn import GCN, GIN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LIGHTNING_STEPS = ("validation_step", "test_step", "on_validation_epoch_end", "on_test_epoch_end")


@pytest.mark.parametrize("method, gap", [("graph.glnn", NodeGap), ("graph.ff_g2m", NodeGap), ("graph.mirage", GraphGap)])
def test_graph_methods_declare_once_and_plug_in_their_evaluation(method, gap):
    cls = nd.get_method(method).module_class
    own = cls.__mro__[: cls.__mro__.index(DistillModule)]
    assert all(getattr(vars(klass)["__init__"], "_declared", False) for klass in own)  # each generated from HParams
    assert all(getattr(cls, name) is getattr(DistillModule, name) for name in LIGHTNING_STEPS)
    assert cls.evaluation_class is gap


def test_the_gnn_teachers_outputs_are_cached_under_their_own_name(tmp_path):
    torch.manual_seed(0)
    teacher = GCN(34, 8, 4, num_layers=2, readout=None)
    run = nd.fit("graph.glnn", student=MLP(34, [8], 4), teacher=teacher, data=KarateClub(), max_epochs=1, runs_root=tmp_path)
    assert run.module._teacher_cache is None  # the core's per-sample cache is not used, nor reused as a dict
    assert set(run.module._gnn_logits) == {"observed@cpu", "full@cpu"}


def test_node_gap_reads_the_teacher_on_the_observed_graph_for_val_and_the_whole_graph_for_test():
    torch.manual_seed(0)
    graph = SBM(num_nodes=120, train_per_class=5, val_per_class=5, inductive=True).graph
    teacher = GCN(16, 8, 4, num_layers=2, readout=None)
    module = nd.build("graph.glnn", MLP(16, [8], 4), teacher=teacher)
    module.eval()
    for stage in ("val", "test"):
        module.evaluation.collect(module, graph, stage)
    (t_val, _, y_val), (t_test, s_test, y_test) = (module.evaluation.gathered(module, s) for s in ("val", "test"))
    seen = observed_graph(graph)
    with torch.no_grad():
        assert torch.equal(t_val, teacher(seen.x, seen.edge_index)[seen.val_mask])
        assert torch.equal(t_test, teacher(graph.x, graph.edge_index)[graph.test_mask])
        assert torch.equal(s_test, module.student(graph.x[graph.test_mask]))
    assert torch.equal(y_val, graph.y[graph.val_mask]) and torch.equal(y_test, graph.y[graph.test_mask])


def test_graph_gap_keeps_the_best_epoch_and_thresholds_only_the_test_graphs():
    torch.manual_seed(0)
    data = BAMotifs(num_graphs=40, batch_size=8)
    data.setup("fit")
    module = nd.build("graph.mirage", GIN(7, 8, 2))
    module.eval()
    gap = module.evaluation
    for batch in data.val_dataloader():
        gap.collect(module, batch, "val")
    val = gap.compute(module, "val")
    assert set(val) == {"student_acc", "student_auc", "full_acc", "full_auc"}  # no threshold on validation
    assert {who: score for who, (score, _) in module._best.items()} == {"student": val["student_auc"], "full": val["full_auc"]}
    biases = gap.calibrate(module, data.val_dataloader())
    assert set(biases) == {"student", "full"} and module.biases is biases
    batches = list(data.test_dataloader())
    for batch in batches:
        gap.collect(module, batch, "test")
    test = gap.compute(module, "test")
    x = torch.cat([module.student(b.x, b.edge_index, b.batch).detach() for b in batches])
    y = torch.cat([b.y for b in batches])
    assert test["student_acc"] == accuracy(x, y, biases["student"]) and test["student_acc_argmax"] == accuracy(x, y)
    assert set(test) == {f"{who}_{m}" for who in ("student", "full") for m in ("acc", "acc_argmax", "auc")}


class WithoutClassCount(pl.LightningDataModule):
    """BA-2motifs behind a user's data module that does not say how many classes it has."""

    def __init__(self):
        super().__init__()
        self.inner = BAMotifs(num_graphs=20, batch_size=4)

    def setup(self, stage=None):
        self.inner.setup(stage)

    def train_dataloader(self):
        return self.inner.train_dataloader()

    def val_dataloader(self):
        return self.inner.val_dataloader()

    def test_dataloader(self):
        return self.inner.test_dataloader()


def test_mirage_refuses_data_without_a_class_count_before_training():
    with pytest.raises(nd.ConfigError, match="has no num_classes; set it"):
        nd.fit("graph.mirage", student=GIN(7, 8, 2), data=WithoutClassCount(), max_epochs=1)
