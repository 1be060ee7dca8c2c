"""KD views draw what the events say; efficiency counts match hand counts; the agreement matrix is right."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.gap import classification_gap
from nbdistill.core.run import EventLog
from nbdistill.core.views import VIEWS
from nbdistill.families.kd import efficiency as eff
from nbdistill.families.kd.compare import comparison_event
from nbdistill.widgets.views import draw_run

KD_VIEWS = ["gap_overlay", "agreement_matrix", "efficiency", "comparison", "robustness", "mtard_balance", "generations"]


def _ax():
    return Figure().subplots()


def _scalar(name, step, value):
    return {"step": step, "epoch": 0, "time": 0.0, "kind": "scalar", "name": name, "value": value}


@pytest.mark.parametrize("name", KD_VIEWS)
def test_every_view_is_registered_and_waits_on_an_empty_log(name):
    ax = VIEWS[name](_ax(), EventLog())
    assert any("waiting" in t.get_text() or "no runs" in t.get_text() for t in ax.texts)


def test_agreement_matrix_counts_by_hand():
    t = torch.tensor([[5.0, 0, 0], [0, 5, 0], [0, 5, 0], [0, 0, 5]])  # teacher predicts 0, 1, 1, 2
    s = torch.tensor([[5.0, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 5]])  # student predicts 0, 1, 2, 2
    m = classification_gap(t, s, torch.tensor([0, 1, 1, 2]), num_classes=3)
    assert m["agreement_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert np.trace(m["agreement_matrix"]) / 4 == m["agreement"]
    event = {
        "step": 3,
        "epoch": 0,
        "time": 0.0,
        "kind": "table",
        "name": "test/agreement_matrix",
        "columns": [0, 1, 2],
        "rows": m["agreement_matrix"],
    }
    ax = VIEWS["agreement_matrix"](_ax(), EventLog([event]))
    np.testing.assert_allclose(ax.images[0].get_array(), [[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert "agreement 0.750" in ax.get_title()


def test_gap_overlay_draws_one_line_per_run_and_the_teacher():
    logs = {
        label: EventLog(
            [_scalar("val/student_acc", s, a + 0.01 * s) for s in range(3)]
            + [_scalar("val/agreement", s, 0.9) for s in range(3)]
            + [_scalar("val/teacher_acc", 2, 0.97)]
        )
        for label, a in (("kd.hinton", 0.8), ("kd.dkd", 0.7))
    }
    ax = VIEWS["gap_overlay"](_ax(), logs)
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(solid) == 2 and np.allclose(solid[1].get_ydata(), [0.7, 0.71, 0.72])
    assert any(line.get_linestyle() == "--" and np.allclose(line.get_ydata(), 0.97) for line in ax.lines)


def test_efficiency_counts_of_an_mlp_by_hand():
    mlp = nd.models.MLP(64, [32], 10)
    x = torch.randn(8, 64)
    assert eff.count_params(mlp) == 64 * 32 + 32 + 32 * 10 + 10
    assert eff.flops_per_sample(mlp, x) == 2 * (64 * 32 + 32 * 10)
    weights = 4 * (64 * 32 + 32 + 32 * 10 + 10)
    assert eff.bytes_per_sample(mlp, x) == pytest.approx(weights / 8 + 4 * 64 + 2 * 4 * (32 + 32 + 10))
    assert eff.attainable(0.5, peak_flops=1e10, bandwidth=1e9) == 5e8
    assert eff.attainable(50.0, peak_flops=1e10, bandwidth=1e9) == 1e10


def test_efficiency_view_draws_the_measured_roofline():
    event = eff.efficiency_event(
        {"teacher": nd.zoo.teacher("digits-mlp"), "student": nd.models.MLP(64, [8], 10)}, torch.randn(64, 64), repeats=2
    )
    assert event["peak_flops"] > 0 and event["bandwidth"] > 0
    rows = [dict(zip(event["columns"], r)) for r in event["rows"]]
    assert rows[0]["flops_per_sample"] > 10 * rows[1]["flops_per_sample"]
    ax = VIEWS["efficiency"](_ax(), EventLog([event]))
    roof = ax.lines[0]
    x, y = roof.get_xdata(), roof.get_ydata()
    assert np.allclose(y, np.minimum(event["peak_flops"], x * event["bandwidth"]))
    assert len(ax.collections) == 2


def test_comparison_view_bars_are_the_means():
    rows = [
        ["teacher", 0.97, 0.0, 1.0, float("nan"), 0],
        ["kd.student_only", 0.90, 0.01, 0.0, 0.5, 5],
        ["kd.hinton", 0.93, 0.02, 3 / 7, 0.6, 5],
    ]
    ax = VIEWS["comparison"](_ax(), EventLog([comparison_event(rows)]))
    widths = sorted(p.get_width() for p in ax.patches)
    assert np.allclose(widths, [0.90, 0.93])
    assert any("+43% gap" in t.get_text() for t in ax.texts)


def test_mtard_and_self_gt_views_read_their_events():
    events = [
        _scalar(f"mtard/{n}", s, v)
        for s in range(3)
        for n, v in (("w_adv", 0.6), ("w_nat", 0.4), ("tau_adv", 1.0), ("tau_nat", 1.2))
    ]
    ax = VIEWS["mtard_balance"](_ax(), EventLog(events))
    assert np.allclose(ax.lines[0].get_ydata(), 0.6)
    pgd = [
        _scalar("val/student_acc", 1, 0.9),
        _scalar("val/student_pgd_acc", 1, 0.4),
        _scalar("val/robust_teacher_pgd_acc", 1, 0.6),
    ]
    ax = VIEWS["robustness"](_ax(), EventLog(pgd))
    assert np.allclose(ax.lines[1].get_ydata(), [0.4])
    gens = {
        "step": 5,
        "epoch": 2,
        "time": 0.0,
        "kind": "points",
        "name": "self_gt/generation_acc",
        "x": [0, 1, 2],
        "y": [0.8, 0.85, 0.86],
        "alpha": 0.6,
    }
    ax = VIEWS["generations"](_ax(), EventLog([gens]))
    assert np.allclose(ax.lines[0].get_ydata(), [0.8, 0.85, 0.86])


def test_method_views_draw_from_a_finished_run():
    run = nd.fit(
        "kd.self_gt",
        student=nd.models.MLP(64, [8], 10),
        teacher=nd.zoo.teacher("digits-mlp"),
        data=nd.data.Digits(n_train=100),
        max_epochs=3,
        distillation_steps=2,
    )
    assert int(run.module.generation) == 2
    gens = run.log.of("self_gt/generation_acc")[-1]
    assert gens["x"] == [0, 1, 2] and all(0 <= a <= 1 for a in gens["y"])
    assert run.log.of("test/agreement_matrix")  # emitted by the core at the end of fitting
    fig = draw_run(run.log, "kd.self_gt")
    assert len(fig.axes) >= 3


def test_every_kd_run_logs_its_efficiency_once_and_draws_every_view_in_rows():
    teacher = nd.zoo.teacher("digits-mlp")
    student = nd.models.MLP(64, [8], 10)
    run = nd.fit("kd.hinton", student=student, teacher=teacher, data=nd.data.Digits(n_train=100), max_epochs=2)
    (event,) = run.log.of("efficiency")
    rows = {r[0]: dict(zip(event["columns"], r)) for r in event["rows"]}
    assert set(rows) == {"teacher", "student"} and event["batch_size"] == 64
    assert rows["student"]["params"] == sum(p.numel() for p in student.parameters())
    assert rows["teacher"]["params"] == sum(p.numel() for p in teacher.parameters())
    assert rows["teacher"]["flops_per_sample"] > rows["student"]["flops_per_sample"] > 0
    # the live panel's figure and run.plot() show all five KD views, three to a row
    fig = run.plot()
    assert [ax.get_title().split(" (")[0] for ax in fig.axes[:1]] == ["training loss"]
    titles = " | ".join(ax.get_title() for ax in fig.axes)
    assert "agreement" in titles and "efficiency (roofline, batch 64)" in titles
    boxes = [ax.get_position() for ax in fig.axes if ax.get_title()]
    assert len({round(b.y0, 2) for b in boxes}) == 2  # two rows
    import io

    from PIL import Image

    from nbdistill.core.views import views_for
    from nbdistill.widgets.render import Composer

    png = Composer(views_for("kd.hinton"), figsize=(11.0, 3.6), dpi=50).png(run.log, "t")
    assert Image.open(io.BytesIO(png)).size == (550, 2 * (180 - 17) + 17)


def test_efficiency_is_measured_in_eval_mode_and_leaves_the_model_as_it_was():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    model.train()
    before = model[1].running_mean.clone()
    eff.efficiency_rows({"m": model}, torch.randn(16, 4) * 5 + 3, repeats=2)
    assert model.training and torch.equal(model[1].running_mean, before) and int(model[1].num_batches_tracked) == 0


def test_measuring_the_peak_leaves_the_global_random_generator_alone():
    eff._measure_peak.cache_clear()
    torch.manual_seed(3)
    state = torch.get_rng_state()
    eff.measure_peak(size=64, copy_mb=1, repeats=1)
    assert torch.equal(torch.get_rng_state(), state)
