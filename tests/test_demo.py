"""``run_demo``: a small version, checked against the runs it made."""

import math

import pytest

import nbdistill as nd
from nbdistill.demo import BASELINE, KD, format_table, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(seeds=2, epochs=3, out_png=out / "demo.png", runs_root=out / "runs", progress=False)
    return result, out


def test_table_has_one_row_per_method_and_the_summary_lines(demo):
    result, _ = demo
    assert set(result["methods"]) == {BASELINE, KD}
    lines = result["table"].splitlines()
    assert "2 seeds" in lines[0] and "3 epochs" in lines[0]
    assert lines[1].split()[:3] == ["method", "test", "acc"]
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in (BASELINE, KD)}
    assert set(rows) == {BASELINE, KD}
    assert any(line.startswith(f"gap closed by {KD}:") for line in lines)
    assert any(f"on {result['wins']['student_acc']}/2 seeds in test accuracy" in line for line in lines)
    assert result["table"] == format_table(result, title=lines[0])


def test_numbers_are_the_runs_metrics(demo):
    result, out = demo
    teacher_accs = []
    for method, row in result["methods"].items():
        assert len(row["runs"]) == 2
        for i, path in enumerate(row["runs"]):
            run = nd.runs.open(path)
            assert run.method == method and run.status == "finished"
            assert run.path.parent == out / "runs"
            m = run.metrics
            assert row["student_acc"][i] == m["test/student_acc"]
            assert row["agreement"][i] == m["test/agreement"]
            assert row["kl"][i] == m["test/kl"]
            teacher_accs.append(m["test/teacher_acc"])
        assert row["student_acc_mean"] == pytest.approx(sum(row["student_acc"]) / 2)
        assert row["agreement_mean"] == pytest.approx(sum(row["agreement"]) / 2)
        assert row["student_acc_std"] == pytest.approx(abs(row["student_acc"][0] - row["student_acc"][1]) / math.sqrt(2))
    assert result["teacher_acc"] == pytest.approx(sum(teacher_accs) / len(teacher_accs))
    base, kd = result["methods"][BASELINE], result["methods"][KD]
    room = result["teacher_acc"] - base["student_acc_mean"]
    assert result["gap_closed"] == pytest.approx((kd["student_acc_mean"] - base["student_acc_mean"]) / room)
    wins = sum(a > b for a, b in zip(kd["student_acc"], base["student_acc"]))
    assert result["wins"]["student_acc"] == wins
    assert f"{kd['student_acc_mean']:.3f} ± {kd['student_acc_std']:.3f}" in result["table"]


def test_runs_follow_the_setting(demo):
    result, _ = demo
    kd_run = nd.runs.open(result["methods"][KD]["runs"][0])
    assert kd_run.hparams["temperature"] == result["setting"]["temperature"]
    assert kd_run.hparams["alpha"] == result["setting"]["alpha"]
    assert result["epochs"] == 3


def test_png_is_written(demo):
    result, out = demo
    png = out / "demo.png"
    assert result["png"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_quick_shrinks_seeds_and_epochs_and_trains_on_one_thread(monkeypatch):
    import torch

    import nbdistill.demo as demo_module

    calls = []

    def fake_fit_one(method, seed, teacher, epochs, runs_root):
        calls.append((method, seed, epochs, torch.get_num_threads()))
        return _FakeRun(method)

    monkeypatch.setattr(demo_module, "fit_one", fake_fit_one)
    before = torch.get_num_threads()
    result = run_demo(seeds=5, quick=True, out_png=None, progress=False)
    assert {seed for _, seed, _, _ in calls} == {0, 1}
    assert {epochs for _, _, epochs, _ in calls} == {demo_module.QUICK["epochs"]}
    assert {threads for *_, threads in calls} == {1}
    assert torch.get_num_threads() == before
    assert result["png"] is None and result["seeds"] == 2
    assert result["wins"] == {"student_acc": 2, "agreement": 2, "ties": 0}


class _FakeRun:
    path = "fake"

    def __init__(self, method):
        acc = 0.9 if method == KD else 0.8
        self.metrics = {"test/student_acc": acc, "test/agreement": acc, "test/kl": 0.1, "test/teacher_acc": 0.95}


def test_rejects_zero_seeds():
    with pytest.raises(ValueError, match="seeds"):
        run_demo(seeds=0, out_png=None, progress=False)
