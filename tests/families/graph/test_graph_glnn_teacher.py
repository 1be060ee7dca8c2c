"""GLNN/FF-G2M's own GCN teacher: trained live (events, progress, view), only when needed, recorded only then."""

import pytest
import torch
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.run import EventLog
from nbdistill.data.graphs import SBM, KarateClub
from nbdistill.families.graph import views
from nbdistill.families.graph.teacher import cached_normalisation, train_node_classifier
from nbdistill.models import MLP
from nbdistill.models.gnn import GCN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_sbm():
    return SBM(num_nodes=120, train_per_class=5, val_per_class=5)


def test_the_teacher_phase_streams_its_progress(tmp_path):
    events, progress = [], []
    run = nd.fit(
        "graph.glnn",
        student=MLP(16, [8], 4),
        data=small_sbm(),
        max_epochs=1,
        teacher_epochs=12,
        runs_root=tmp_path,
        observers=[events.append],
        progress=lambda done, total, metrics: progress.append((done, total, metrics)),
    )
    teacher = [e for e in events if e["name"].startswith("teacher/")]
    first_train = next(i for i, e in enumerate(events) if e["name"].startswith(("train/", "val/")))
    assert all(events.index(e) < first_train for e in teacher)  # all before the student's first step
    assert run.scalars("teacher/train_loss")[0] == list(range(1, 13))
    steps, acc = run.scalars("teacher/val_acc")
    assert steps == list(range(1, 13)) and all(0.0 <= a <= 1.0 for a in acc)
    m = run.metrics
    assert m["teacher/epochs"] == 12 and m["teacher/best_val_acc"] == max(acc) and m["teacher/seconds"] > 0
    assert acc[int(m["teacher/best_epoch"]) - 1] == max(acc)
    phases = [p for p in progress if p[2].get("phase") == "teacher"]
    assert [p[2]["epoch"] for p in phases] == list(range(1, 13)) and all(p[:2] == (0, 0) for p in phases)
    assert phases[0][2]["epochs"] == 12 and "teacher/val_acc" in phases[-1][2]
    assert "teacher" in nd.get_method("graph.glnn").views
    ax = views.teacher(Figure().subplots(), run.log)
    assert "val acc" in ax.get_title() and len(ax.get_lines()) == 2  # the curve and the kept epoch


def test_lam_one_trains_no_teacher_and_records_no_teacher_epochs(tmp_path):
    run = nd.fit("graph.glnn", student=MLP(16, [8], 4), data=small_sbm(), max_epochs=2, lam=1.0, runs_root=tmp_path)
    assert run.status == "finished" and run.module.teacher is None
    assert set(run.module.last_terms) == {"loss", "ce"}
    assert not [n for n in run.metrics if n.startswith("teacher/") or "teacher_acc" in n or "gnn_" in n]
    assert 0.0 <= run.metrics["test/student_acc"] <= 1.0 and run.metrics["latency/mlp_graph_ms"] > 0
    assert "teacher_epochs" not in run.hparams and run.hparams["lam"] == 1.0
    ax = views.teacher(Figure().subplots(), run.log)
    assert "no teacher trained here" in ax.texts[0].get_text()
    assert "no GNN" in views.latency(Figure().subplots(), run.log).get_title()
    run.plot()


@pytest.mark.parametrize("method", ["graph.glnn", "graph.ff_g2m"])
def test_a_given_teacher_is_not_retrained_nor_its_epochs_recorded(method, tmp_path):
    torch.manual_seed(0)
    teacher = GCN(34, 8, 4, num_layers=2, readout=None)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    run = nd.fit(method, student=MLP(34, [8], 4), teacher=teacher, data=KarateClub(), max_epochs=1, runs_root=tmp_path)
    assert run.module.teacher is teacher
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert "teacher_epochs" not in run.hparams and not [n for n in run.metrics if n.startswith("teacher/")]
    trained = nd.fit(method, student=MLP(16, [8], 4), data=small_sbm(), max_epochs=1, teacher_epochs=10, runs_root=tmp_path)
    assert trained.hparams["teacher_epochs"] == 10


def test_the_normalisation_cache_lives_only_while_the_teacher_trains():
    graph = small_sbm().graph
    teacher = GCN(16, 8, 4, num_layers=2, readout=None)
    convs = list(teacher.convs)
    with cached_normalisation(teacher):
        assert all(c.cached for c in convs)
        teacher(graph.x, graph.edge_index)
        assert all(c._cached_edge_index is not None for c in convs)
    assert not any(c.cached or c._cached_edge_index is not None for c in convs)
    train_node_classifier(teacher, graph, epochs=3)
    # another graph (a subgraph) gives what a fresh copy of the same weights gives: no stale normalisation
    fresh = GCN(16, 8, 4, num_layers=2, readout=None)
    fresh.load_state_dict(teacher.state_dict())
    fresh.eval()
    edges = graph.edge_index[:, graph.edge_index[0] < 60]
    torch.testing.assert_close(teacher(graph.x, edges), fresh(graph.x, edges))


def test_cached_training_is_the_uncached_recipe():
    """The cached normalisation changes no number: the same weights as a plain loop's after the same steps."""
    graph = small_sbm().graph
    reports = []
    torch.manual_seed(0)
    ours = GCN(16, 8, 4, num_layers=2, readout=None)
    torch.manual_seed(0)
    plain = GCN(16, 8, 4, num_layers=2, readout=None)
    info = train_node_classifier(ours, graph, epochs=5, seed=3, report=lambda *r: reports.append(r), report_every=2)
    assert [r[0] for r in reports] == [2, 4, 5]
    torch.manual_seed(3)
    opt = torch.optim.Adam(plain.parameters(), lr=0.01, weight_decay=5e-4)
    best, state = -1.0, None
    for _ in range(5):
        plain.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            plain(graph.x, graph.edge_index)[graph.train_mask], graph.y[graph.train_mask]
        ).backward()
        opt.step()
        plain.eval()
        with torch.no_grad():
            acc = (plain(graph.x, graph.edge_index).argmax(-1)[graph.val_mask] == graph.y[graph.val_mask]).float().mean().item()
        if acc > best:
            best, state = acc, {k: v.clone() for k, v in plain.state_dict().items()}
    assert info["val_acc"] == best
    for k, v in state.items():
        torch.testing.assert_close(ours.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_the_teacher_view_waits_then_shows_the_epochs_so_far():
    ax = views.teacher(Figure().subplots(), EventLog())
    assert "waiting" in ax.texts[0].get_text()
    ev = [{"kind": "scalar", "name": "teacher/epochs", "step": 0, "epoch": 0, "time": 0.0, "value": 50}]
    for s in (1, 2, 3):
        for name, v in (("teacher/train_loss", 1.0 / s), ("teacher/val_acc", 0.2 * s)):
            ev.append({"kind": "scalar", "name": name, "step": s, "epoch": 0, "time": 0.0, "value": v})
    ax = views.teacher(Figure().subplots(), EventLog(ev))
    assert ax.get_title() == "GCN teacher: epoch 3/50"
