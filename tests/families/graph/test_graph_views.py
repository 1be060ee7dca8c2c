"""The graph family's views draw from empty, partial and finished logs."""

import pytest
from matplotlib.figure import Figure

from nbdistill.core.run import EventLog
from nbdistill.core.views import VIEWS
from nbdistill.families.graph import views


def event(kind, name, step=0, **fields):
    return {"kind": kind, "name": name, "step": step, "epoch": 0, "time": 0.0, **fields}


def histogram(graphs, per_class):
    return event(
        "histogram",
        "mirage/tree_support",
        edges=[0, 1, 2],
        counts=[sum(c) for c in zip(*per_class)],
        per_class=per_class,
        trees=["1(2)", "2(1,1)"],
        thresholds=[3, 4],
        class_sizes=[10, 12],
        graphs=graphs,
        total_graphs=22,
        distinct_trees=5,
    )


@pytest.mark.parametrize("name", ["tree_histogram", "distilled_vs_full", "latency"])
def test_registered_and_waits_for_data(name):
    ax = Figure().subplots()
    assert VIEWS[name](ax, EventLog()) is ax
    assert "waiting" in ax.texts[0].get_text()


def test_tree_histogram_draws_the_latest_counts_and_each_class_threshold():
    log = EventLog([histogram(5, [[1, 2], [0, 1]]), histogram(22, [[9, 3], [0, 7]])])
    ax = views.tree_histogram(Figure().subplots(), log)
    heights = sorted(round(p.get_height(), 1) for p in ax.patches)
    assert heights == [0.8, 3, 7, 9]  # the latest event; an empty bar is drawn at 0.8 on the log axis
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [3, 4]
    assert ax.get_yscale() == "log" and "22/22 graphs" in ax.get_title()


def test_distilled_vs_full_shows_both_curves_and_the_test_scores():
    log = EventLog(
        [
            event("scalar", f"val/{who}_{m}", step=s, value=v)
            for s in (1, 2)
            for who in ("student", "full")
            for m, v in (("acc", 0.5 + s / 10), ("auc", 0.6))
        ]
        + [event("scalar", "test/student_acc", value=0.75), event("scalar", "mirage/compression_bytes", value=8.0)]
    )
    ax = views.distilled_vs_full(Figure().subplots(), log)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.get_lines()) == 4 and "distilled acc (test 0.750)" in labels
    assert "8.0× fewer bytes" in ax.get_title()


def test_latency_compares_gnn_and_mlp():
    values = {"gnn_graph_ms": 6.0, "mlp_graph_ms": 0.1, "gnn_nodes_ms": 3.0, "mlp_nodes_ms": 0.05}
    log = EventLog([event("scalar", f"latency/{k}", value=v) for k, v in values.items()])
    ax = views.latency(Figure().subplots(), log)
    assert sorted(p.get_height() for p in ax.patches) == sorted(values.values())
    assert {t.get_text() for t in ax.texts} == {"60×"}


def test_draw_tree_puts_the_root_on_top_above_its_children():
    # root 0 (label 2) with children 1 and 2; node 2 has children 3 and 4; edges point child -> parent
    edges = [[1, 2, 3, 4], [0, 0, 2, 2]]
    ax = views.draw_tree(Figure().subplots(), [2, 0, 1, 0, 0], edges, names=["a", "b", "c"])
    assert [t.get_text() for t in ax.texts] == ["c", "a", "b", "a", "a"]
    xs, ys = zip(*[t.get_position() for t in ax.texts])
    assert ys == (0, -1, -1, -2, -2) and xs[0] == (xs[1] + xs[2]) / 2 and xs[2] == (xs[3] + xs[4]) / 2
    assert len(ax.get_lines()) == 4
