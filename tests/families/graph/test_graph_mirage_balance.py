"""Mirage on hand-built two-class graphs: accuracy follows the ROC-AUC once each GNN's decision threshold
is set on the validation graphs, and the distilled set's classes weigh the same."""

import pytest
import torch
from matplotlib.figure import Figure
from torch_geometric.data import Data

import nbdistill as nd
from nbdistill.data.graphs import GraphSetDataModule
from nbdistill.families.graph import views
from nbdistill.families.graph.losses import class_weights
from nbdistill.families.graph.threshold import accuracy, decision_bias
from nbdistill.models.gnn import GIN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def star_or_path(num_graphs: int, seed: int = 0) -> list:
    """Random trees (15-29 nodes labelled 0/1) with five label-2 nodes attached to node 0: a star
    (class 1) or a path (class 0). Most nodes' computation trees occur in both classes."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        y = i % 2
        k = int(torch.randint(15, 30, (1,), generator=g))
        labels = torch.cat([torch.randint(0, 2, (k,), generator=g), torch.full((5,), 2)])
        edges = [(j, int(torch.randint(0, j, (1,), generator=g))) for j in range(1, k)] + [(0, k)]
        edges += [(k, k + j) for j in range(1, 5)] if y else [(k + j, k + j + 1) for j in range(4)]
        e = torch.tensor(edges).t()
        graphs.append(
            Data(x=torch.nn.functional.one_hot(labels, 3).float(), edge_index=torch.cat([e, e.flip(0)], 1), y=torch.tensor([y]))
        )
    return graphs


class StarOrPath(GraphSetDataModule):
    num_classes = 2
    num_node_features = 3

    def __init__(self, num_graphs: int = 200, **kwargs):
        super().__init__(**kwargs)
        self.num_graphs = num_graphs

    def make_graphs(self) -> list:
        return star_or_path(self.num_graphs)


def test_distilled_accuracy_is_well_above_chance_where_the_auc_is_high(tmp_path):
    """The issue's case: a GNN trained on the distilled set ranks real graphs well (ROC-AUC) while its
    argmax can put most of them in one class (the trees common to both classes, absent from the
    distilled set, shift every real graph's logits; 88 tree sets of one class against 5 of the other).
    Class-balanced training and the threshold set on the validation graphs make the accuracy follow."""
    torch.manual_seed(2)
    student = GIN(3, 32, 2, num_layers=2)
    run = nd.fit("graph.mirage", student=student, data=StarOrPath(200, batch_size=32), max_epochs=20, seed=1, runs_root=tmp_path)
    m = run.metrics
    assert m["test/student_auc"] >= 0.8
    assert m["test/student_acc"] >= 0.75 and m["test/student_acc"] >= m["test/student_acc_argmax"]
    assert m["test/full_acc"] >= 0.8 and m["test/full_acc"] >= m["test/full_acc_argmax"]
    assert set(run.module.biases) == {"student", "full"}
    ax = views.distilled_vs_full(Figure().subplots(), run.log)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"distilled acc (test {m['test/student_acc']:.3f}; argmax {m['test/student_acc_argmax']:.3f})" in labels


def test_the_decision_bias_is_the_best_threshold_on_two_classes():
    torch.manual_seed(0)
    y = torch.arange(200) % 2
    logits = torch.randn(200, 2)
    logits[:, 1] += 5.0 + 2.0 * y  # ranked right, all put in class 1 by argmax
    bias = decision_bias(logits, y)
    assert bias[0] == 0.0 and accuracy(logits, y) == 0.5
    margin = logits[:, 1] - logits[:, 0]
    best = max(((margin > t) == y.bool()).float().mean().item() for t in margin.tolist())  # every threshold, by brute force
    assert accuracy(logits, y, bias) == pytest.approx(best)
    assert (decision_bias(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 0])) == 0).all()  # right already: no shift


def test_the_decision_bias_with_three_classes_and_its_limits():
    torch.manual_seed(0)
    y = torch.arange(300) % 3
    logits = torch.randn(300, 3)
    logits[torch.arange(300), y] += 2.0
    logits[:, 2] += 4.0
    bias = decision_bias(logits, y)
    assert accuracy(logits, y) <= 0.45 and accuracy(logits, y, bias) >= accuracy(logits, y, torch.tensor([0.0, 0.0, -4.0]))
    assert decision_bias(torch.empty(0, 3), torch.empty(0, dtype=torch.long)).tolist() == [0.0, 0.0, 0.0]


def test_class_weights_give_each_class_of_the_distilled_set_the_same_total():
    w = class_weights([0] * 88 + [1] * 5, 3)
    assert w[2] == 0.0
    assert w[0] * 88 == pytest.approx(w[1] * 5) == pytest.approx(93 / 2)
