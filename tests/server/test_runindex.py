"""The pure parts of the server extension: sparkline decimation, runs root, main loss choice."""

import numpy as np
import pytest

from nbdistill.server import server_runs_root
from nbdistill.server.runindex import SPARK_POINTS, Decimator, main_loss


@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 1000, 4097])
def test_decimator_keeps_bin_means_in_bounded_memory(n):
    d = Decimator()
    values = np.sin(np.arange(n) / 50.0)
    for step, v in enumerate(values):
        d.add(step, float(v))
    out = d.values()
    assert len(d.points) < 2 * SPARK_POINTS
    if n < 2 * SPARK_POINTS:
        assert out == pytest.approx(values)
    else:
        assert SPARK_POINTS <= len(out) <= 2 * SPARK_POINTS
    assert np.mean(out[: len(d.points)]) == pytest.approx(np.mean(values[: d.stride * len(d.points)]), abs=1e-9)


def test_decimator_skips_non_finite_values():
    d = Decimator()
    for v in (1.0, float("nan"), float("inf"), 3.0):
        d.add(0, v)
    assert d.values() == [1.0, 3.0]


def test_main_loss_prefers_train_loss():
    assert main_loss(["val/acc", "train/kd", "train/loss"]) == "train/loss"
    assert main_loss(["val/acc", "train/kd"]) == "train/kd"
    assert main_loss(["val/acc"]) == "val/acc"
    assert main_loss([]) is None


def test_runs_root_is_the_env_variable_else_under_the_server_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert server_runs_root("/srv/lab", {}).as_posix() == "/srv/lab/nbdistill-runs"
    assert server_runs_root("/srv/lab", {"NBDISTILL_RUNS": "elsewhere"}) == tmp_path / "elsewhere"
    assert server_runs_root("/srv/lab", {"NBDISTILL_RUNS": "/abs/runs"}).as_posix() == "/abs/runs"
