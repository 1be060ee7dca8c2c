"""The graph methods through nd.fit: live mining events, distilled vs full, GNN→MLP gap and latency."""

import math

import pytest
import torch

import nbdistill as nd
from nbdistill.data.graphs import SBM, BAMotifs, KarateClub
from nbdistill.families.graph.mirage import MINING_UPDATES
from nbdistill.families.graph.teacher import train_node_classifier
from nbdistill.models import MLP
from nbdistill.models.gnn import GCN, GIN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_all_three_methods_are_registered_with_their_views():
    assert nd.methods("graph") == ["graph.ff_g2m", "graph.glnn", "graph.mirage"]
    assert "tree_histogram" in nd.get_method("graph.mirage").views
    assert "latency" in nd.get_method("graph.glnn").views


def test_mirage_mines_live_then_trains_on_distilled_and_full_data():
    data = BAMotifs(num_graphs=40, batch_size=8)
    seen = []
    run = nd.fit(
        "graph.mirage",
        student=GIN(data.num_node_features, 16, 2, num_layers=2),
        data=data,
        max_epochs=1,
        min_support=0.2,
        observers=[seen.append],
    )
    assert run.status == "finished"
    kinds = [e["kind"] for e in seen]
    histograms = [e for e in seen if e["name"] == "mirage/tree_support"]
    assert kinds.index("histogram") < kinds.index("scalar")  # the histogram streams before any training
    assert 1 < len(histograms) <= MINING_UPDATES
    graphs = [e["graphs"] for e in histograms]
    assert graphs == sorted(graphs) and graphs[-1] == len(data.graphs("train")) == 24
    last = histograms[-1]
    assert last["thresholds"] == [math.ceil(0.2 * n) for n in last["class_sizes"]]
    m = run.metrics
    assert m["mirage/compression_bytes"] == pytest.approx(m["mirage/full_bytes"] / m["mirage/distilled_bytes"])
    assert m["mirage/full_graphs"] == 24 and m["mirage/distilled_graphs"] == len(run.module.distilled.graphs)
    for name in ("test/student_acc", "test/full_acc", "test/student_auc", "val/full_auc"):
        assert 0.0 <= m[name] <= 1.0
    assert run.log.last("mirage/compression")["kind"] == "table"
    run.plot()


def test_mirage_without_the_full_baseline_trains_the_distilled_gnn_only():
    data = BAMotifs(num_graphs=20, batch_size=4)
    run = nd.fit("graph.mirage", student=GIN(data.num_node_features, 8, 2), data=data, max_epochs=1, full_baseline=False)
    assert run.module.full is None and set(run.module.last_terms) == {"loss", "distilled_ce"}
    assert "test/student_auc" in run.metrics and "test/full_acc" not in run.metrics
    run.plot()


def test_a_resumed_mirage_run_remembers_its_best_epochs():
    data = BAMotifs(num_graphs=20, batch_size=4)
    first = nd.fit("graph.mirage", student=GIN(data.num_node_features, 8, 2), data=data, max_epochs=1)
    best = {who: score for who, (score, _) in first.module._best.items()}
    saved = torch.load(first.checkpoint, map_location="cpu", weights_only=False)["mirage_best"]
    assert {who: score for who, (score, _) in saved.items()} == best
    again = nd.resume(first, student=GIN(data.num_node_features, 8, 2), data=data, max_epochs=2)
    assert again.status == "finished" and again.path == first.path
    assert set(again.module._best) == {"student", "full"}
    assert all(again.module._best[who][0] >= best[who] for who in best)


def test_mirage_refuses_what_it_cannot_mine_before_training():
    data = BAMotifs(num_graphs=20, batch_size=4)
    with pytest.raises(nd.ConfigError, match="num_hops = 2 but the student GNN has 3 layers"):
        nd.fit("graph.mirage", student=GIN(data.num_node_features, 8, 2, num_layers=3), data=data, max_epochs=1)
    with pytest.raises(nd.ConfigError, match="student must be a GNN"):
        nd.fit("graph.mirage", student=MLP(data.num_node_features, [8], 2), data=data, max_epochs=1)
    with pytest.raises(nd.ConfigError, match="graph-classification data"):
        nd.fit("graph.mirage", student=GIN(34, 8, 4), data=KarateClub(), max_epochs=1)
    with pytest.raises(nd.ConfigError, match="takes no teacher"):
        nd.fit("graph.mirage", student=GIN(7, 8, 2), teacher=GIN(7, 8, 2), data=data, max_epochs=1)


def test_mirage_says_when_no_tree_set_survives():
    data = BAMotifs(num_graphs=20, batch_size=4)
    with pytest.raises(nd.TrainingFailed, match="no tree set is frequent"):
        nd.fit("graph.mirage", student=GIN(data.num_node_features, 8, 2), data=data, max_epochs=1, min_tree_count=1000)


@pytest.fixture(scope="module")
def karate_teacher():
    torch.manual_seed(0)
    teacher = GCN(34, 16, 4, num_layers=2, readout=None)
    train_node_classifier(teacher, KarateClub().graph, epochs=40)
    return teacher


@pytest.mark.parametrize("method", ["graph.glnn", "graph.ff_g2m"])
def test_gnn_to_mlp_reports_the_gap_and_the_latency(method, karate_teacher):
    run = nd.fit(method, student=MLP(34, [16], 4), teacher=karate_teacher, data=KarateClub(), max_epochs=3)
    m = run.metrics
    assert run.status == "finished"
    assert 0.0 <= m["test/student_acc"] <= 1.0 and 0.0 <= m["test/teacher_acc"] <= 1.0
    assert 0.0 <= m["val/agreement"] <= 1.0
    assert set(run.module.last_terms) == ({"loss", "ce", "kd"} if method == "graph.glnn" else {"loss", "ce", "lfd", "hfd"})
    for name in ("gnn_graph_ms", "mlp_graph_ms", "gnn_nodes_ms", "mlp_nodes_ms"):
        assert m[f"latency/{name}"] > 0.0
    run.plot()


def test_without_a_teacher_a_gcn_is_trained_first():
    data = SBM(num_nodes=120, train_per_class=5, val_per_class=5)
    run = nd.fit("graph.glnn", student=MLP(16, [8], 4), data=data, max_epochs=1, teacher_epochs=10)
    assert isinstance(run.module.teacher, GCN) and not any(p.requires_grad for p in run.module.teacher.parameters())
    assert 0.0 <= run.metrics["teacher/val_acc"] <= 1.0


def test_gnn_to_mlp_refuses_graph_classification_data():
    with pytest.raises(nd.ConfigError, match="needs node-classification data"):
        nd.fit("graph.glnn", student=MLP(7, [8], 2), data=BAMotifs(num_graphs=20), max_epochs=1)


def test_inductive_training_never_reads_the_hidden_test_nodes():
    graph = SBM(num_nodes=120, train_per_class=5, val_per_class=5, inductive=True).graph
    graph.x[graph.test_mask] = float("nan")  # any use of a hidden node would turn the loss NaN
    teacher = GCN(16, 8, 4, num_layers=2, readout=None)
    info = train_node_classifier(teacher, graph, epochs=5)
    assert math.isfinite(info["val_acc"])
    for method in ("graph.glnn", "graph.ff_g2m"):
        module = nd.build(method, MLP(16, [8], 4), teacher=teacher)
        terms = module.loss_terms(graph)
        assert all(math.isfinite(v.item()) for v in terms.values())
        terms["loss"].backward()
