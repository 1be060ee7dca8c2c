"""The live panel, headless: controls from declared hyper-parameters, runs, stop, errors, fresh students."""

from __future__ import annotations

import json
import re
import sys
import threading
import time

import ipywidgets as W
import pytest
import torch
from torch import nn

import nbdistill as nd
from nbdistill.widgets.panel import Panel
from nbdistill.widgets.run_state import RunState

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def teacher():
    return nd.zoo.teacher("digits-mlp")


@pytest.fixture(scope="module")
def data():
    return nd.data.Digits()


@pytest.fixture
def make_panel(teacher, data, tmp_path):
    made = []

    def make(**kwargs):
        kwargs.setdefault("teacher", teacher)
        kwargs.setdefault("student", nd.models.MLP(64, [16], 10))
        kwargs.setdefault("data", data)
        kwargs.setdefault("max_epochs", 2)
        kwargs.setdefault("runs_root", tmp_path / "runs")
        panel = nd.panel("kd", **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


def run_folders(panel):
    root = panel.runs_root
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def wait_until(condition, timeout=120.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def test_controls_come_from_the_declared_hparams(make_panel):
    panel = make_panel()
    assert panel.method == "kd.hinton"
    assert list(panel._ui.method_dropdown.options) == nd.methods("kd")
    controls = panel._controls
    spec = nd.get_method("kd.hinton")
    assert list(controls) == [h.name for h in spec.hparams]
    temperature, alpha, lr = controls["temperature"], controls["alpha"], controls["lr"]
    assert isinstance(temperature, W.FloatSlider) and (temperature.min, temperature.max, temperature.value) == (1.0, 20.0, 4.0)
    assert isinstance(alpha, W.FloatSlider) and (alpha.min, alpha.max, alpha.value) == (0.0, 1.0, 0.1)
    assert isinstance(lr, W.FloatLogSlider) and (lr.min, lr.max, lr.base) == (-5.0, 0.0, 10.0)
    assert lr.value == pytest.approx(1e-2)
    assert panel.hparams == spec.defaults()
    assert panel.max_epochs == 2
    assert panel.status == "idle" and panel.error is None and panel.run is None


def test_each_hparam_type_gets_its_control():
    from nbdistill.widgets.controls import control_for

    H = nd.HParam
    assert isinstance(control_for(H("n", int, 3, 1, 10)), W.IntSlider)
    assert isinstance(control_for(H("n", int, 3, 1, None)), W.BoundedIntText)
    assert isinstance(control_for(H("flag", bool, True)), W.Checkbox)
    choice = control_for(H("kind", str, "b", choices=("a", "b")))
    assert isinstance(choice, W.Dropdown) and choice.value == "b" and list(choice.options) == ["a", "b"]
    assert isinstance(control_for(H("x", float, 0.5)), W.FloatText)
    log = control_for(H("lr", float, 1e-3, 1e-6, 1e-1, log=True))
    assert isinstance(log, W.FloatLogSlider) and (log.min, log.max) == (-6, -1)


def test_changing_the_method_rebuilds_the_controls_keeping_shared_values(make_panel):
    panel = make_panel()
    panel._controls["lr"].value = 1e-3
    panel._ui.method_dropdown.value = "kd.student_only"
    assert list(panel._controls) == ["lr", "weight_decay"]
    assert panel._controls["lr"].value == pytest.approx(1e-3)
    assert panel._ui.hparam_box.children == tuple(panel._controls.values())


def test_default_method_without_a_teacher_needs_none(make_panel):
    assert not nd.get_method(make_panel(teacher=None).method).needs_teacher
    assert make_panel(method="kd.student_only").method == "kd.student_only"


def test_bad_construction_arguments_raise_config_errors(teacher, data):
    with pytest.raises(nd.ConfigError, match="unknown family"):
        Panel("nope", teacher=teacher, student=nn.Linear(64, 10), data=data)
    with pytest.raises(nd.ConfigError, match="student"):
        Panel("kd", teacher=teacher, data=data)
    with pytest.raises(nd.ConfigError, match="unknown method"):
        Panel("kd", teacher=teacher, student=nn.Linear(64, 10), data=data, method="kd.hintn")


def test_start_wait_finishes_with_bounded_redraws(make_panel):
    panel = make_panel(max_epochs=4, redraw_hz=4.0)
    begun = time.monotonic()
    panel.start(temperature=6.0)
    assert panel.status == "running"
    assert panel._ui.start_button.disabled and not panel._ui.stop_button.disabled
    with pytest.raises(RuntimeError, match="already going"):
        panel.start()
    run = panel.wait(timeout=300)
    duration = time.monotonic() - begun
    assert panel.status == "finished" and run.status == "finished" and panel.error is None
    assert run.hparams["temperature"] == 6.0
    assert 1 <= panel.redraws <= duration * panel.redraw_hz + 2
    assert panel.png.startswith(PNG)
    assert "finished" in panel._ui.status_html.value and "epoch 4/4" in panel._ui.status_html.value
    assert run.id in panel._ui.run_html.value
    assert not panel._ui.start_button.disabled and panel._ui.stop_button.disabled
    assert [e["name"] for e in panel.log.events] == [e["name"] for e in run.events]
    assert json.loads((run.path / "run.json").read_text())["status"] == "finished"


def test_stop_mid_run_leaves_a_stopped_run_with_a_checkpoint(make_panel):
    # stopped long before the end, even on a fast machine; drawn in-process, so that a live frame
    # comes whatever the load (the worker's frames wait for CPU that training leaves)
    panel = make_panel(max_epochs=5000, redraw_hz=5.0, render_process=False)
    panel.start()
    wait_until(lambda: panel.redraws >= 1 or not panel.running)  # a live redraw, while training
    assert panel.running
    assert panel.run is not None and panel.run.id in run_folders(panel)
    panel.stop()
    run = panel.wait(timeout=300)
    assert panel.status == "stopped" and run.status == "stopped"
    assert json.loads((run.path / "run.json").read_text())["status"] == "stopped"
    assert run.checkpoint is not None
    assert "stopped" in panel._ui.status_html.value
    done, total = panel._state.progress
    assert 0 < done < total


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"temperature": 100.0}, r"'temperature' = 100.0 is outside its range \[1.0, 20.0\]"),
        ({"alpha": -0.5}, "'alpha' = -0.5 is outside its range"),
        ({"temprature": 2.0}, "unknown hyper-parameter"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
        ({"method": "kd.nope"}, "unknown method"),
    ],
)
def test_bad_values_are_reported_and_no_run_starts(make_panel, overrides, message):
    panel = make_panel()
    panel.start(**overrides)
    assert panel.error is not None
    assert re.search(message, panel.error)
    assert panel.status == "idle" and panel.run is None and not panel.running
    assert run_folders(panel) == []
    assert panel._ui.error_html.layout.display == "block"
    assert "Error" in panel._ui.error_html.value and "cf222e" in panel._ui.error_html.value
    assert panel._controls["temperature"].value == 4.0  # a rejected value never reaches the controls


def test_a_student_with_the_wrong_output_size_is_reported(make_panel):
    """fit's checks find it in the training thread, before any run folder is made."""
    panel = make_panel(student=nd.models.MLP(64, [16], 7))
    panel.start()
    assert panel.wait(timeout=300) is None
    assert "7 classes" in panel.error and "10" in panel.error
    assert panel.status == "idle" and panel.run is None and run_folders(panel) == [] and panel.runs == []
    assert not panel._ui.start_button.disabled and panel._ui.error_html.layout.display == "block"
    panel.start(temperature=2.0)  # still wrong: still reported, the error box is refreshed
    panel.wait(timeout=300)
    assert "7 classes" in panel.error


def test_a_start_builds_the_method_module_once(make_panel):
    """The panel asks the registry what it needs to check (hyper-parameters, whether a teacher is
    needed) and leaves the module to fit: no module is built only to be thrown away."""
    module_class = nd.get_method("kd.hinton").module_class
    init = module_class.__init__.__code__
    built = []

    def count(frame, event, arg):  # a profiler, not a patch: the class stays as it is
        if event == "call" and frame.f_code is init and type(frame.f_locals.get("self")) is module_class:
            built.append(module_class)

    panel = make_panel(max_epochs=1, render_process=False)
    sys.setprofile(count)
    threading.setprofile(count)  # the training thread, made by start()
    try:
        panel.start()
        run = panel.wait(timeout=300)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    assert panel.error is None and run.status == "finished"
    assert built == [module_class]


def test_a_method_that_needs_a_teacher_is_refused_at_once_without_one(make_panel):
    panel = make_panel(teacher=None, method="kd.student_only")
    panel.start(method="kd.hinton")
    assert "kd.hinton needs a teacher" in panel.error
    assert panel.status == "idle" and not panel.running and run_folders(panel) == []


def test_an_error_clears_on_the_next_good_start(make_panel):
    panel = make_panel(max_epochs=1)
    panel.start(temperature=0.0)
    assert panel.error
    panel.start()
    assert panel.error is None and panel._ui.error_html.layout.display == "none"
    assert panel.wait(timeout=300).status == "finished"


def test_each_start_trains_a_fresh_copy_of_the_student(make_panel):
    student = nd.models.MLP(64, [16], 10)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    panel = make_panel(student=student, max_epochs=1)
    panel.start()
    first = panel.wait(timeout=300)
    panel.start()
    second = panel.wait(timeout=300)
    assert first.id != second.id
    first_losses, second_losses = first.scalars("train/loss")[1], second.scalars("train/loss")[1]
    assert first_losses[0] == pytest.approx(second_losses[0])  # same start: not continued training
    assert first_losses == pytest.approx(second_losses)
    for k, v in student.state_dict().items():
        assert torch.equal(v, before[k])  # the student given to the panel is never trained
    trained = second.module.student.state_dict()
    assert any(not torch.equal(trained[k], before[k]) for k in before)


class BreaksWhileTraining(nn.Module):
    """A student that works for the input checks and fails at its third training forward."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("the student broke on purpose")
        return self.linear(x)


def test_a_run_failing_while_training_shows_failed_and_the_reason(make_panel):
    panel = make_panel(student=BreaksWhileTraining(), redraw_hz=50.0)
    panel.start()
    run = panel.wait(timeout=300)
    assert panel.status == "failed" and run is not None and run.status == "failed"
    assert "the student broke on purpose" in panel.error
    assert "failed" in panel._ui.status_html.value
    assert panel.redraws >= 1  # the final figure is drawn whatever the outcome
    assert not panel._ui.start_button.disabled


def test_drawing_in_process_works_too(make_panel):
    panel = make_panel(render_process=False, max_epochs=1)
    assert panel.renderer.in_process
    panel.start()
    assert panel.wait(timeout=300).status == "finished"
    assert panel.redraws >= 1 and panel.png.startswith(PNG)


def test_the_panel_displays_as_its_widget(make_panel):
    panel = make_panel()
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert "nbdistill-panel" in panel.widget._dom_classes
    assert panel.png.startswith(PNG)  # the empty views are shown before any run


def test_overlay_draws_the_gap_of_every_run_of_the_panel(make_panel):
    panel = make_panel(max_epochs=2, render_process=False)
    for overrides in ({"temperature": 2.0}, {"temperature": 8.0}, {"method": "kd.student_only"}):
        panel.start(**overrides)
        assert panel.wait(timeout=300).status == "finished"
    assert [r.method for r in panel.runs] == ["kd.hinton", "kd.hinton", "kd.student_only"]
    fig = panel.overlay()
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels[0].startswith("kd.hinton temperature=2.0, alpha=0.1 (")
    assert labels[1].startswith("kd.hinton temperature=8.0, alpha=0.1 (")
    assert labels[2].startswith("kd.student_only (")
    assert labels[3].startswith("teacher (")
    # each run's curve is its own validation accuracy
    acc_steps, acc = panel.runs[1].scalars("val/student_acc")
    solid = [line for line in ax.get_lines() if line.get_label() == labels[1]][0]
    assert list(solid.get_ydata()) == acc and list(solid.get_xdata()) == acc_steps


def test_a_phase_before_training_shows_its_epochs_in_the_status_line(make_panel, tmp_path):
    """GLNN trains its own teacher before the student's first step and reports each of its epochs
    with ``metrics["phase"]``; the status line says so instead of 'step 0/?'."""
    panel = make_panel(render_process=False)
    panel._state = state = RunState("graph.glnn", "run-1", tmp_path, max_epochs=2)
    state.on_progress(0, 0, {"phase": "teacher", "epoch": 3, "epochs": 30})
    panel._update_status()
    assert "teacher epoch 3/30" in panel._ui.status_html.value and "step 0/?" not in panel._ui.status_html.value
    state.on_progress(5, 40, {})
    panel._update_status()
    assert "step 5/40" in panel._ui.status_html.value and "teacher" not in panel._ui.status_html.value
