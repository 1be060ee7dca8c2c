"""kd.fair end to end: refusals before training, the fair teacher it trains, the parity events, the view."""

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.run import EventLog
from nbdistill.data import ArrayDataModule
from nbdistill.widgets.views import VIEWS


def _student(seed=0):
    pl.seed_everything(seed, verbose=False)
    return nd.models.MLP(8, [8], 2)


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Trainer.fit was called despite bad input")

    monkeypatch.setattr(pl.Trainer, "fit", refuse)


def test_data_without_a_sensitive_attribute_is_refused_before_training(monkeypatch, runs_root):
    _no_training(monkeypatch)
    x, y, _ = nd.data.FairTabular(num_samples=200).dataset("train").tensors
    with pytest.raises(nd.ConfigError, match=r"kd.fair needs the sensitive attribute s of every example.*FairTabular"):
        nd.fit("kd.fair", student=_student(), data={"train": (x, y), "val": (x, y), "test": (x, y)}, max_epochs=1)
    assert not runs_root.exists() or not any(runs_root.iterdir())


class _Groups(ArrayDataModule):
    """(x, y, s) batches with the given groups ``s`` on every split."""

    num_classes = 2

    def __init__(self, s):
        super().__init__(batch_size=16)
        self.s = torch.as_tensor(s)

    def load(self):
        g = np.random.default_rng(0)
        x = g.standard_normal((len(self.s), 8)).astype(np.float32)
        y = np.arange(len(self.s)) % 2
        return {name: (x, y) for name in ("train", "val", "test")}

    def setup(self, stage=None):
        if self._splits is not None:
            return
        super().setup(stage)
        self._splits = {k: torch.utils.data.TensorDataset(*d.tensors, self.s) for k, d in self._splits.items()}


@pytest.mark.parametrize(
    "s, words",
    [
        ([0, 1, 2, 1] * 10, r"sensitive attribute s, a 0/1 value per example.*values \[0, 1, 2\]: encode the groups as 0 and 1"),
        ([1] * 40, r"the training split holds only the group s = \[1\].*give training examples of both groups"),
    ],
)
def test_groups_that_are_not_two_0_1_groups_are_refused_before_training(s, words, monkeypatch):
    _no_training(monkeypatch)
    with pytest.raises(nd.ConfigError, match=words):
        nd.fit("kd.fair", student=_student(), data=_Groups(s), max_epochs=1)


def test_a_teacher_without_a_linear_layer_is_refused():
    class NoLinear(torch.nn.Module):
        def forward(self, x):
            return x[:, :2]

    with pytest.raises(nd.ConfigError, match="the teacher has no nn.Linear layer"):
        nd.fit("kd.fair", student=_student(), teacher=NoLinear(), data=nd.data.FairTabular(num_samples=200), max_epochs=1)


@pytest.mark.slow
def test_the_fairness_loss_lowers_the_parity_gap_of_the_same_teachers_student():
    """Seeded: the fair teacher is trained by the first run and given to the second; the fairness loss
    lowers the student's parity gap on the test split. Every validation epoch logs the parity gap."""
    data = nd.data.FairTabular(num_samples=1000)
    fair = nd.fit("kd.fair", student=_student(), data=data, max_epochs=6, fairness=10.0, teacher_epochs=10)
    assert fair.status == "finished", fair.error
    steps, _ = fair.log.scalars("teacher/train_loss")
    assert steps == list(range(1, 11))
    assert len(fair.log.scalars("val/student_parity_gap")[0]) == 6
    assert len(fair.log.scalars("val/student_acc")[0]) == 6
    plain = nd.fit("kd.fair", student=_student(), teacher=fair.module.teacher, data=data, max_epochs=6, fairness=0.0)
    assert "teacher_epochs" not in plain.hparams  # a given teacher: no teacher is trained
    m_fair, m_plain = fair.metrics, plain.metrics
    assert m_fair["test/teacher_parity_gap"] == m_plain["test/teacher_parity_gap"]  # the same teacher
    assert m_fair["test/student_parity_gap"] < m_plain["test/student_parity_gap"] - 0.05
    assert all(math.isfinite(v) for k, v in m_fair.items() if k.startswith("test/"))
    table = fair.log.last("test/parity_rates")
    assert table["columns"][0] == "model" and len(table["rows"]) == 4  # teacher and student, two classes each
    again = nd.fit("kd.fair", student=_student(), data=data, max_epochs=6, fairness=10.0, teacher_epochs=10)
    assert again.metrics["test/student_parity_gap"] == m_fair["test/student_parity_gap"]  # a rerun is the same
    ax = Figure().subplots()
    assert VIEWS["fair_parity"](ax, {"fair": fair.log, "plain": plain.log}) is ax
    assert len(ax.get_legend().get_texts()) == 3  # two students and their one shared teacher


def test_the_view_draws_from_an_empty_and_a_partial_log():
    ax = Figure().subplots()
    assert VIEWS["fair_parity"](ax, EventLog()) is ax
    assert "waiting" in ax.texts[0].get_text()
    partial = EventLog([{"kind": "scalar", "name": "val/student_parity_gap", "step": 3, "value": 0.2}])
    ax = Figure().subplots()
    assert VIEWS["fair_parity"](ax, partial) is ax  # no accuracy yet: still the placeholder
    log = EventLog(
        [
            {"kind": "scalar", "name": "val/student_parity_gap", "step": 3, "value": 0.2},
            {"kind": "scalar", "name": "val/student_acc", "step": 3, "value": 0.7},
        ]
    )
    ax = Figure().subplots()
    VIEWS["fair_parity"](ax, log)
    assert len(ax.lines) == 2  # the trajectory and its last point; no teacher logged
