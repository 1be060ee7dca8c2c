"""One run's state: what the training thread writes, what the status line shows, fresh per Start."""

from __future__ import annotations

import threading

import pytest

import nbdistill as nd
from nbdistill.widgets.run_state import RunState, status_label


def scalar(name, step, value):
    return {"step": step, "epoch": 0, "time": 0.0, "kind": "scalar", "name": name, "value": value}


def test_events_and_progress_from_the_training_thread(tmp_path):
    state = RunState("kd.hinton", "r1", tmp_path, max_epochs=4)
    assert state.status == "running" and state.events == [] and state.progress == (0, 0) and state.redraws == 0
    state.on_event(scalar("train/loss", 1, 2.0))
    state.on_progress(1, 40, {})
    assert len(state.log) == 1 and state.progress == (1, 40)
    state.on_event(scalar("val/student_acc", 10, 0.5))
    state.on_event(scalar("val/student_acc", 20, 0.75))
    assert len(state.log) == 3 and state.log.scalars("val/student_acc")[1] == [0.5, 0.75]
    assert state.latest("val/student_acc") == 0.75
    line = state.status_line()
    assert "step 1/40" in line and "epoch 1/4" in line and "val student acc 0.750" in line
    assert "kd.hinton — r1 (running, step 1)" == state.title()
    assert state.run is None  # no run folder yet


def test_a_score_run_quotes_its_energy_distance(tmp_path):
    state = RunState("score.dmd", "r2", tmp_path, max_epochs=4)
    state.on_progress(4, 40, {})
    assert "energy distance" not in state.status_line()
    state.on_event(scalar("val/energy_distance", 4, 0.01234))
    assert "val energy distance 0.0123" in state.status_line()


def test_finish_marks_the_end_and_stops_the_clock(tmp_path):
    state = RunState("kd.hinton", "r1", tmp_path, max_epochs=1)
    assert not state.done.is_set() and state.ended is None
    state.finish("stopped", None)
    assert state.done.is_set() and state.status == "stopped" and state.ended is not None
    assert state.elapsed() == state.ended - state.started
    assert "stopped" in state.status_line() and "stopping" in state.status_line(note="stopping…")


def test_states_share_nothing(tmp_path):
    first, second = RunState("kd.hinton", "r1", tmp_path, 1), RunState("kd.hinton", "r2", tmp_path, 1)
    first.on_event(scalar("train/loss", 1, 1.0))
    first.stop_event.set()
    assert second.events == [] and not second.stop_event.is_set() and len(second.log) == 0
    assert isinstance(second.done, threading.Event) and second.done is not first.done


def test_the_idle_label():
    assert "idle" in status_label("idle") and "#666" in status_label("idle")


@pytest.fixture
def panel(tmp_path):
    p = nd.panel(
        "kd",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        max_epochs=1,
        runs_root=tmp_path / "runs",
        render_process=False,
    )
    yield p
    p.close()


def test_each_start_makes_a_fresh_run_state(panel):
    assert panel._state is None and panel.status == "idle" and panel.redraws == 0 and len(panel.log) == 0
    panel.start()
    first = panel._state
    panel.wait(timeout=300)
    first_events = list(first.events)
    assert first.status == "finished" and first.redraws >= 1 and first_events
    panel.start(temperature=2.0)
    second = panel._state
    assert second is not first and second.run_id != first.run_id
    assert second.hparams["temperature"] == 2.0 and first.hparams["temperature"] == 4.0
    panel.wait(timeout=300)
    assert first.events == first_events  # the first run's state is left as it ended
    assert len(panel.log) == len(second.events) and second.events[0] is not first_events[0]
    assert [r.id for r in panel.runs] == [first.run_id, second.run_id]
