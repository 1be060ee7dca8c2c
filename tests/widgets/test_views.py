"""Views draw synthetic events on Axes: the right data on the lines, empty and partial logs."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from nbdistill.core.run import EventLog
from nbdistill.widgets import views
from nbdistill.widgets.render import Composer, Renderer

PNG = b"\x89PNG\r\n\x1a\n"


def scalar(name, step, value, epoch=0):
    return {"step": step, "epoch": epoch, "time": 0.0, "kind": "scalar", "name": name, "value": value}


def points(name, step, x, y):
    return {"step": step, "epoch": 0, "time": 0.0, "kind": "points", "name": name, "x": x, "y": y}


def kd_log(steps=50, val_every=10) -> EventLog:
    events = []
    for s in range(1, steps + 1):
        events += [scalar("train/loss", s, 2.0 / s), scalar("train/ce", s, 1.0 / s), scalar("train/kd", s, 1.0 / s)]
        if s % val_every == 0:
            events += [
                scalar("val/teacher_acc", s, 0.97),
                scalar("val/student_acc", s, 0.5 + s / 200),
                scalar("val/agreement", s, 0.55 + s / 200),
                scalar("val/kl", s, 1.0 / s),
                points("val/per_class_gap", s, list(range(10)), [0.1 * (i % 3 - 1) for i in range(10)]),
            ]
    return EventLog(events)


def axes():
    return Figure().add_subplot()


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_losses_plots_each_train_term_against_step():
    ax = views.losses(axes(), kd_log())
    lines = lines_by_label(ax)
    assert set(lines) == {"loss", "ce", "kd"}
    np.testing.assert_allclose(lines["loss"].get_xdata(), np.arange(1, 51))
    np.testing.assert_allclose(lines["loss"].get_ydata(), 2.0 / np.arange(1, 51))
    assert ax.get_yscale() == "linear"  # 2 → 0.02 is exactly two decades: not more


def test_losses_switches_to_log_scale_over_two_decades():
    log = EventLog([scalar("train/loss", s, 10.0**-s) for s in range(5)])
    ax = views.losses(axes(), log)
    assert ax.get_yscale() == "log"
    assert not ax.yaxis.get_minor_locator()()  # no minor ticks: half the cost of a live redraw


def test_gap_plots_accuracies_agreement_and_kl():
    log = kd_log()
    ax = views.gap(axes(), log)
    lines = lines_by_label(ax)
    np.testing.assert_allclose(lines["student"].get_xdata(), [10, 20, 30, 40, 50])
    np.testing.assert_allclose(lines["student"].get_ydata(), [0.55, 0.6, 0.65, 0.7, 0.75])
    np.testing.assert_allclose(lines["teacher"].get_ydata(), [0.97] * 5)
    np.testing.assert_allclose(lines["agreement"].get_ydata(), [0.6, 0.65, 0.7, 0.75, 0.8])
    twin = [a for a in ax.figure.axes if a is not ax]
    assert len(twin) == 1
    np.testing.assert_allclose(twin[0].get_lines()[0].get_ydata(), [0.1, 0.05, 1 / 30, 0.025, 0.02])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["teacher", "student", "agreement", "KL"]


def test_gap_survives_nan_accuracies():
    log = EventLog([scalar("val/student_acc", 1, float("nan")), scalar("val/student_acc", 2, 0.8)])
    ax = views.gap(axes(), log)
    assert all(math.isfinite(v) for v in ax.get_ylim())


def test_per_class_gap_draws_the_latest_evaluation_and_prefers_test():
    log = kd_log()
    ax = views.per_class_gap(axes(), log)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.1 * (i % 3 - 1) for i in range(10)])
    assert "val, step 50" in ax.get_title()
    log.append(points("test/per_class_gap", 51, [0, 1], [0.2, -0.1]))
    ax = views.per_class_gap(axes(), log)
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.2, -0.1])
    assert ax.get_title().startswith("per-class gap (test")
    colors = [p.get_facecolor() for p in ax.patches]
    assert colors[0] != colors[1]  # the teacher ahead (red) and the student ahead (green) differ


def test_compare_overlays_one_line_per_run_with_its_last_value():
    kd, alone = kd_log(), EventLog([scalar("val/student_acc", s, 0.4 + s / 500) for s in (10, 20, 30)])
    ax = views.compare(axes(), {"kd.hinton": kd, "student only": alone})
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["kd.hinton (0.75)", "student only (0.46)"]
    np.testing.assert_allclose(lines[1].get_xdata(), [10, 20, 30])
    ax = views.compare(axes(), {"a": kd}, name="val/agreement")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.6, 0.65, 0.7, 0.75, 0.8])


@pytest.mark.parametrize("view", [*views.VIEWS.values(), lambda ax, log: views.compare(ax, {"run": log})])
def test_every_view_draws_an_empty_log(view):
    ax = view(axes(), EventLog())
    assert not ax.get_lines()
    assert any("waiting" in t.get_text() or "no data" in t.get_text() for t in ax.texts)
    ax.figure.savefig(io.BytesIO(), format="png")


def test_compare_of_no_runs():
    ax = views.compare(axes(), {})
    assert "no runs" in ax.texts[0].get_text()


@pytest.mark.parametrize("cut", [1, 3, 4, 7, 33, 57])
def test_every_view_draws_a_partial_log(cut):
    partial = EventLog(kd_log(steps=20).events[:cut])
    fig = views.draw_run(partial, "kd.hinton", views=list(views.VIEWS))
    assert len(fig.axes) >= 3
    fig.savefig(io.BytesIO(), format="png")


def test_views_skip_malformed_points_events():
    log = EventLog([{"step": 1, "epoch": 0, "time": 0, "kind": "scalar", "name": "val/per_class_gap", "value": 1.0}])
    ax = views.per_class_gap(axes(), log)
    assert not ax.patches


def test_decimate_bounds_points_and_keeps_the_ends():
    steps, values = np.arange(10_000), np.linspace(0, 1, 10_000)
    xs, ys = views.decimate(steps, values, max_points=100)
    assert len(xs) == len(ys) == 100
    assert xs[0] == 0 and xs[-1] == 9_999
    assert np.all(np.diff(xs) > 0)
    assert ys.min() >= 0 and ys.max() <= 1
    short = views.decimate([1, 2, 3], [4, 5, 6])
    np.testing.assert_array_equal(short[1], [4, 5, 6])


def test_decimate_ignores_nan_within_a_bin():
    values = np.ones(1000)
    values[::7] = np.nan
    _, ys = views.decimate(np.arange(1000), values, max_points=10)
    np.testing.assert_allclose(ys, 1.0)


def test_long_runs_draw_with_bounded_points():
    log = EventLog([scalar("train/loss", s, 1.0) for s in range(20_000)])
    ax = views.losses(axes(), log)
    assert len(ax.get_lines()[0].get_xdata()) <= views.MAX_POINTS


def test_draw_run_uses_the_method_views_and_rejects_unknown_ones():
    fig = views.draw_run(kd_log(), "kd.hinton", title="t")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["training loss", "teacher–student gap (val)"]
    assert fig._suptitle.get_text() == "t"
    with pytest.raises(ValueError, match="unknown view"):
        views.draw_run(kd_log(), "kd.hinton", views=["nope"])


def test_draw_compare_makes_one_axes_per_scalar():
    fig = views.draw_compare({"a": kd_log(), "b": kd_log(steps=20)}, names=["val/student_acc", "val/agreement"])
    assert len(fig.axes) == 2
    assert len(fig.axes[1].get_lines()) == 2


def test_composer_redraws_only_the_views_whose_events_changed():
    composer = Composer(("losses", "gap", "per_class_gap"), figsize=(9, 3), dpi=50)
    log = kd_log(steps=10)
    png = composer.png(log, "title")
    assert png.startswith(PNG) and composer.redrawn == ["losses", "gap", "per_class_gap"]
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (450, 150)
    assert composer.png(log, "title") and composer.redrawn == []
    log.append(scalar("train/loss", 11, 0.1))
    composer.png(log, "title")
    assert composer.redrawn == ["losses"]
    log.append(scalar("train/new_term", 11, 0.1))  # a new name the losses view lists
    composer.png(log)
    assert composer.redrawn == ["losses"]
    log.append(scalar("val/student_acc", 11, 0.9))
    composer.png(log)
    assert composer.redrawn == ["gap"]
    log.append(points("test/per_class_gap", 11, [0, 1], [0.1, 0.2]))
    composer.png(log)
    assert composer.redrawn == ["per_class_gap"]
    assert Image.open(io.BytesIO(composer.png(log))).size == (450, 150 - round(0.34 * 50))  # no title strip


def test_composer_reuses_fitted_margins_between_fits_and_fits_every_view_on_the_final_draw(monkeypatch):
    from nbdistill.widgets.render import drawing

    monkeypatch.setattr(drawing, "REFIT_EVERY", 3)
    composer = Composer(("losses", "gap"), figsize=(8, 3), dpi=50)
    fits = []
    for i, fig in enumerate(composer._figures):
        real = fig.tight_layout
        fig.tight_layout = lambda *a, _i=i, _real=real, **k: (fits.append(_i), _real(*a, **k))[1]
    log = kd_log(steps=4)
    composer.png(log)
    assert fits == [0, 1]  # the first draw of each view fits its margins
    for step in range(5, 10):  # new losses only: the losses view alone redraws
        log.append(scalar("train/loss", step, 1.0 / step))
        composer.png(log)
    # the losses view fitted on its 3rd and 6th draws only; in between it took the stored margins
    assert fits == [0, 1, 0, 0]
    pars = composer._figures[0].subplotpars
    assert (pars.left, pars.bottom) == (composer._margins[0]["left"], composer._margins[0]["bottom"])
    log.append(scalar("train/loss", 10, 0.1))
    composer.png(log)  # 7th draw: margins reused, so this view is not fitted ...
    assert fits == [0, 1, 0, 0] and not composer._fitted[0]
    composer.png(log, fit=True)  # ... and the final figure fits it again (the gap view was fitted)
    assert fits == [0, 1, 0, 0, 0] and composer.redrawn == ["losses"] and all(composer._fitted)


def test_read_log_is_an_event_log_that_records_reads():
    from nbdistill.widgets.render import ReadLog

    log = kd_log(steps=10)
    reads = ReadLog(log)
    assert isinstance(reads, EventLog)  # views may check (kd's gap_overlay does)
    reads.scalars("val/kl")
    reads.names("scalar")
    assert reads.read == {"val/kl"} and reads.listed == {"scalar"} and not reads.everything
    before = reads.state(log)
    log.append(scalar("val/kl", 11, 0.1))
    assert reads.state(log) != before
    with pytest.raises(TypeError):
        reads.append(scalar("x", 1, 1.0))


@pytest.mark.parametrize("process", [True, False])
def test_renderer_draws_incrementally_in_a_worker_or_locally(process):
    renderer = Renderer(figsize=(6, 2), dpi=40, process=process)
    try:
        renderer.reset("kd.hinton")
        events = kd_log(steps=20).events
        part = events[:30]
        assert renderer.draw(part, "part").startswith(PNG)
        part.extend(events[30:])
        png = renderer.draw(part, "all")
        assert png.startswith(PNG)
        assert renderer.in_process is (not process)
        assert len(renderer._local_log) == len(events)  # each event sent once
    finally:
        renderer.close()


def test_renderer_falls_back_to_local_drawing_when_the_worker_dies():
    renderer = Renderer(figsize=(6, 2), dpi=40)
    renderer.reset("kd.hinton")
    events = kd_log(steps=10).events
    renderer.draw(events[:5])
    renderer._proc.kill()
    renderer._proc.wait()
    assert renderer.draw(events).startswith(PNG)
    assert renderer.in_process and "worker" in renderer.fallback_reason
    assert len(renderer._local_log) == len(events)


def test_the_worker_draws_views_registered_by_family_modules():
    import nbdistill as nd

    views_of_lelp = nd.get_method("kd.lelp").views  # imports the families: their views register
    assert "agreement_matrix" in views_of_lelp
    renderer = Renderer(figsize=(8, 2), dpi=40)
    try:
        renderer.reset("kd.lelp", views_of_lelp)
        assert renderer.draw(kd_log(steps=10).events).startswith(PNG)
        assert not renderer.in_process, renderer.fallback_reason
    finally:
        renderer.close()
