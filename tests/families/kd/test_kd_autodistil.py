"""kd.autodistil's core: weight-sharing slicing and extraction, the sub-space and its sampling, the
Pareto front, the task-agnostic objective on a hand-computed case, and the bad-input errors."""

import math

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.autodistil_objective import autodistil_objective, relation_kl, relation_logits
from nbdistill.families.kd.pipelines.autodistil_subnets import (
    extract,
    mlp_params,
    pareto_front,
    sample_subnets,
    sliced_forward,
    spread,
    sub_space,
    width_options,
)


def _supernet(hidden=(12, 8), seed=0):
    torch.manual_seed(seed)
    return nd.models.MLP(64, list(hidden), 10).double()


def _x(n=7, seed=1):
    return torch.randn(n, 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("widths", [(3, 2), (12, 1), (5, 8), (12, 8)])
def test_extracted_sub_student_equals_the_sliced_forward(widths):
    supernet, x = _supernet(), _x()
    sub = extract(supernet, widths)
    assert sub.hidden == list(widths)
    logits, hidden = sliced_forward(supernet, x, widths)
    assert hidden.shape == (len(x), widths[-1])
    # float64, the same products summed in the same order: equal to rounding (tolerance 1e-12)
    torch.testing.assert_close(sub(x), logits, rtol=0, atol=1e-12)


def test_full_widths_give_the_supernet_itself():
    supernet, x = _supernet(), _x()
    full = extract(supernet, supernet.hidden)
    torch.testing.assert_close(full(x), supernet(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(sliced_forward(supernet, x, supernet.hidden)[0], supernet(x), rtol=0, atol=1e-12)
    for a, b in zip(full.state_dict().values(), supernet.state_dict().values()):
        assert torch.equal(a, b)


def test_sub_student_weights_are_the_leading_slices_and_a_copy():
    supernet = _supernet()
    sub = extract(supernet, (4, 3))
    assert torch.equal(sub.net[0].weight, supernet.net[0].weight[:4])
    assert torch.equal(sub.net[2].weight, supernet.net[2].weight[:3, :4])
    assert torch.equal(sub.net[4].weight, supernet.net[4].weight[:, :3])
    with torch.no_grad():
        sub.net[0].weight.zero_()
    assert supernet.net[0].weight.abs().sum() > 0  # a copy: training it leaves the super-network alone


def test_sliced_forward_trains_the_shared_weights_only_where_used():
    supernet, x = _supernet(), _x()
    sliced_forward(supernet, x, (4, 3))[0].sum().backward()
    grad = supernet.net[0].weight.grad
    assert grad[:4].abs().sum() > 0 and grad[4:].abs().sum() == 0


def test_parameter_count_matches_the_model():
    for widths in [(1, 1), (4, 3), (12, 8)]:
        assert mlp_params(64, widths, 10) == sum(p.numel() for p in extract(_supernet(), widths).parameters())


def test_sub_space_is_sorted_by_size_from_smallest_to_supernet():
    assert width_options(8, 0.25, 4) == [2, 4, 6, 8]
    assert width_options(8, 1.0, 4) == [8] and width_options(8, 0.25, 1) == [8]
    space = sub_space(_supernet(), 0.25, 4)
    assert len(space) == 16 and space[-1] == (12, 8) and space[0] == (3, 2)
    sizes = [mlp_params(64, w, 10) for w in space]
    assert sizes == sorted(sizes)
    assert spread(space, 5)[0] == space[0] and spread(space, 5)[-1] == space[-1] and len(spread(space, 5)) == 5


def test_sandwich_rule_samples_largest_smallest_and_distinct_others():
    space = sub_space(_supernet(), 0.25, 4)
    picks = sample_subnets(space, 4, torch.Generator().manual_seed(3))
    assert picks[0] == space[-1] and picks[1] == space[0] and len(set(picks)) == 4
    assert picks == sample_subnets(space, 4, torch.Generator().manual_seed(3))  # seeded: a rerun draws the same
    assert sample_subnets(space[:1], 4, torch.Generator()) == [space[0]]


def test_pareto_front_by_hand():
    # (params, acc): (1, .5) front; (2, .4) dominated by (1, .5); (3, .9) front; (3, .8) dominated; (4, .9) dominated
    assert pareto_front([1, 2, 3, 3, 4], [0.5, 0.4, 0.9, 0.8, 0.9]) == [True, False, True, False, False]


def test_relation_kl_on_a_hand_computed_case():
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # d = 2
    student = torch.tensor([[1.0], [2.0], [0.0]], dtype=torch.float64)  # d = 1
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(relation_logits(teacher), torch.tensor([[0, r], [0, r], [r, r]], dtype=torch.float64))
    torch.testing.assert_close(relation_logits(student), torch.tensor([[2.0, 0], [2, 0], [0, 0]], dtype=torch.float64))

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    row = sum(p * math.log(p / q) for p, q in zip(softmax([0, r]), softmax([2, 0])))  # rows 0 and 1; row 2: both uniform
    expected = 2 * row / 3
    assert expected == pytest.approx(0.5547358, abs=1e-7)
    assert relation_kl(teacher, student).item() == pytest.approx(expected, rel=1e-12)


def test_objective_terms_and_label_free_total():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(5, 10, generator=g, dtype=torch.float64), torch.randn(5, 10, generator=g, dtype=torch.float64)
    hs, ht = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 9, generator=g, dtype=torch.float64)
    out = autodistil_objective(zs, zt, hs, ht, temperature=2.0, relation_weight=0.5)
    pt, log_ps = torch.softmax(zt / 2, -1), torch.log_softmax(zs / 2, -1)
    kl = (pt * (pt.log() - log_ps)).sum(-1).mean() * 4
    torch.testing.assert_close(out["logit_kl"], kl, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["loss"], out["logit_kl"] + 0.5 * out["relation"], rtol=1e-12, atol=0)
    same = autodistil_objective(zt, zt, ht, ht, 1.0, 1.0)
    assert same["loss"].abs().item() < 1e-12


def test_a_student_that_is_not_an_mlp_is_refused():
    teacher = nd.zoo.teacher("digits-mlp")
    conv = nd.models.ConvNet(in_shape=[1, 8, 8], num_classes=10, width=4, depth=1)
    with pytest.raises(ConfigError, match="the student must be an nbdistill.models.MLP, got ConvNet"):
        nd.get_method("kd.autodistil").module_class(student=conv, teacher=teacher)
    with pytest.raises(ConfigError, match="at least one hidden layer"):
        nd.get_method("kd.autodistil").module_class(student=nd.models.MLP(64, [], 10), teacher=teacher)


def test_missing_teacher_and_bad_widths_are_refused():
    with pytest.raises(ConfigError, match="pass teacher="):
        nd.get_method("kd.autodistil").module_class(student=nd.models.MLP(64, [8], 10))
    with pytest.raises(ConfigError, match=r"do not fit the super-network's hidden widths \[12, 8\]"):
        extract(_supernet(), (13, 8))
    with pytest.raises(ConfigError, match="one width per hidden layer"):
        extract(_supernet(), (4,))


def test_view_draws_empty_and_a_ranking_table():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from nbdistill.core.run import EventLog
    from nbdistill.families.kd.pipelines.autodistil_views import autodistil_subnets

    ax = Figure().subplots()
    assert autodistil_subnets(ax, EventLog()) is ax
    columns = ["rank", "widths", "params", "val_acc", "val_objective", "pareto"]
    rows = [[1, "8", 610, 0.9, 0.1, True], [2, "4", 310, 0.8, 0.2, True], [3, "6", 460, 0.7, 0.3, False]]
    log = EventLog([{"kind": "table", "name": "autodistil_subnets", "columns": columns, "rows": rows, "step": 3}])
    ax = autodistil_subnets(Figure().subplots(), log)
    assert len(ax.collections) == 2  # the sub-students and the ringed Pareto front
    assert "best 8: 0.900" in [t.get_text() for t in ax.texts]
