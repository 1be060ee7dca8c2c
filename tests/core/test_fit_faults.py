"""Bad input is refused before training; a failing run is marked failed; stop and resume are exact."""

import json
import threading

import pytest
import torch
from torch import nn

import nbdistill as nd


@pytest.fixture(scope="module")
def teacher():
    return nd.zoo.teacher("digits-mlp")


def student(hidden=16, out=10, inp=64):
    torch.manual_seed(1)
    return nd.models.MLP(inp, [hidden], out)


def _no_runs(root):
    return not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="kd.hinton", student_out=7), "the student outputs 7 classes but the teacher outputs 10"),
        (
            dict(method="kd.hinton", student_in=32),
            r"the student cannot take the data's inputs of shape \[64\].*expects 32 input features",
        ),
        (dict(method="kd.hintn"), "unknown method 'kd.hintn'"),
        (dict(method="kd.hinton", temperature=50.0), r"'temperature' = 50.0 is outside its range \[1.0, 20.0\]"),
        (dict(method="kd.hinton", no_teacher=True), "kd.hinton needs a teacher"),
    ],
)
def test_bad_input_is_refused_before_any_training(teacher, runs_root, kwargs, message):
    kwargs = dict(kwargs)
    method = kwargs.pop("method")
    s = student(out=kwargs.pop("student_out", 10), inp=kwargs.pop("student_in", 64))
    t = None if kwargs.pop("no_teacher", False) else teacher
    with pytest.raises(nd.ConfigError, match=message):
        nd.fit(method, teacher=t, student=s, data=nd.data.Digits(), max_epochs=1, **kwargs)
    assert _no_runs(runs_root), "no run folder may be created for refused input"


def test_data_with_other_class_count_is_refused(runs_root):
    data = nd.data.Digits(classes=[0, 1, 2])
    with pytest.raises(nd.ConfigError, match="the data has 3 classes but the student outputs 10"):
        nd.fit("kd.student_only", student=student(), data=data, max_epochs=1)


class NaNAfter(nn.Module):
    """Wraps a student and makes its output NaN from the ``after``-th training call on."""

    def __init__(self, inner, after):
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return out * float("nan")
        return out


def test_nan_loss_marks_the_run_failed_and_keeps_events(teacher, runs_root):
    with pytest.raises(nd.TrainingFailed, match="loss became nan at step 12") as info:
        nd.fit("kd.hinton", teacher=teacher, student=NaNAfter(student(), after=12), data=nd.data.Digits(), max_epochs=3)
    run = info.value.run
    assert run.status == "failed"
    assert "NonFiniteLoss: loss became nan at step 12 (epoch 0)" in run.error
    steps, values = run.scalars("train/loss")
    assert steps and max(steps) < 12 and all(v == v for v in values)  # events before the failure are kept
    assert "traceback" in json.loads((run.path / "run.json").read_text())


def _stop_at(step):
    event = threading.Event()

    def observer(e):
        if e["step"] >= step:
            event.set()

    return event, observer


def test_stop_then_resume_matches_an_uninterrupted_run(teacher, runs_root):
    kw = dict(teacher=teacher, data=nd.data.Digits(), max_epochs=4, seed=3)
    full = nd.fit("kd.hinton", student=student(), **kw)
    event, observer = _stop_at(30)
    part = nd.fit("kd.hinton", student=student(), stop_event=event, observers=[observer], **kw)
    assert part.status == "stopped"
    assert part.checkpoint is not None and part.checkpoint.exists()
    stopped_at = max(part.scalars("train/loss")[0])
    assert 30 <= stopped_at < 68  # mid-run: 4 epochs of 17 batches is 68 steps

    resumed = nd.resume(part, teacher=teacher, student=student(), data=nd.data.Digits(), max_epochs=4, seed=3)
    assert resumed.path == part.path and resumed.status == "finished"
    assert resumed.module.global_step == full.module.global_step == 68
    for a, b in zip(full.module.student.parameters(), resumed.module.student.parameters()):
        assert torch.equal(a, b)  # exact: same process, same kernels, same batches; resume must not change a bit
    for name in ("test/student_acc", "test/agreement", "test/kl"):
        assert resumed.metrics[name] == full.metrics[name]


def test_stop_request_file_stops_a_run_from_outside(teacher, runs_root):
    seen = {}

    def observer(e):
        if e["step"] >= 10 and "done" not in seen:
            seen["done"] = True
            run_dirs = list(runs_root.iterdir())
            nd.runs.open(run_dirs[0]).request_stop()

    run = nd.fit("kd.hinton", teacher=teacher, student=student(), data=nd.data.Digits(), max_epochs=50, observers=[observer])
    assert run.status == "stopped" and max(run.scalars("train/loss")[0]) < 50 * 17
