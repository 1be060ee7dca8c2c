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


def _fake_fit(calls):
    """A stand-in for ``nbdistill.core.fit.fit`` (what ``compare.run_comparison`` calls) that trains nothing."""
    import torch

    def fit(method, student, teacher, data, max_epochs, seed, runs_root=None, **hparams):
        calls.append((method, seed, max_epochs, torch.get_num_threads(), hparams))
        return _FakeRun(method, seed)

    return fit


def test_quick_shrinks_seeds_and_epochs_and_trains_on_one_thread(monkeypatch):
    import torch

    import nbdistill.core.fit as core_fit
    import nbdistill.demo as demo_module

    calls = []
    monkeypatch.setattr(core_fit, "fit", _fake_fit(calls))
    before = torch.get_num_threads()
    result = run_demo(seeds=5, quick=True, out_png=None, progress=False)
    assert {seed for _, seed, *_ in calls} == {0, 1}
    assert {epochs for _, _, epochs, *_ in calls} == {demo_module.QUICK["epochs"]}
    assert {threads for *_, threads, _ in calls} == {1}
    assert torch.get_num_threads() == before
    assert result["png"] is None and result["seeds"] == 2
    assert result["wins"] == {"student_acc": 2, "agreement": 2, "ties": 0}
    setting = demo_module.SETTING
    assert {m: hp for m, *_, hp in calls} == {
        BASELINE: {},
        KD: {"temperature": setting["temperature"], "alpha": setting["alpha"]},
    }


def test_demo_trains_and_summarises_through_compare(monkeypatch):
    """One comparison: ``run_demo`` trains with ``compare.run_comparison`` and its ± std is
    ``compare.sample_std`` (replaced here by a marker that the table must show)."""
    import nbdistill.core.fit as core_fit
    from nbdistill.families.kd import compare

    calls = []
    monkeypatch.setattr(core_fit, "fit", _fake_fit(calls))
    comparisons = []
    real_run_comparison = compare.run_comparison

    def run_comparison(*args, **kwargs):
        comparisons.append(kwargs["seeds"])
        return real_run_comparison(*args, **kwargs)

    monkeypatch.setattr(compare, "run_comparison", run_comparison)
    monkeypatch.setattr(compare, "sample_std", lambda values: 0.123)
    result = run_demo(seeds=3, epochs=2, out_png=None, progress=False)
    assert [list(seeds) for seeds in comparisons] == [[0, 1, 2]]
    assert len(calls) == 6
    for row in result["methods"].values():
        assert row["student_acc_std"] == row["agreement_std"] == 0.123
    assert "0.900 ± 0.123" in result["table"] and "0.800 ± 0.123" in result["table"]


def test_summary_numbers_are_compares():
    """``summarize`` and ``compare.comparison_rows`` give the same means, std and gap closed."""
    from nbdistill.demo import summarize
    from nbdistill.families.kd import compare

    accs = {BASELINE: [0.80, 0.83, 0.78], KD: [0.91, 0.93, 0.98]}
    runs = {m: [_FakeRun(m, seed, acc) for seed, acc in enumerate(a)] for m, a in accs.items()}
    summary = summarize(runs)
    results = [compare.Result(m, seed, acc, 0.95, float("nan")) for m, a in accs.items() for seed, acc in enumerate(a)]
    rows, teacher = compare.comparison_rows(results)
    by_method = {row[0]: row for row in rows}
    # computed by the same functions on the same floats, so equal to the last bit (no tolerance)
    assert summary["teacher_acc"] == teacher
    for method in accs:
        row = summary["methods"][method]
        assert [row["student_acc_mean"], row["student_acc_std"]] == by_method[method][1:3]
    assert summary["gap_closed"] == by_method[KD][3]
    # hand-computed: deviations from 0.94 are -0.03, -0.01, +0.04, so s = sqrt((9 + 1 + 16) e-4 / 2) = 0.01·sqrt(13)
    assert summary["methods"][KD]["student_acc_std"] == pytest.approx(0.01 * math.sqrt(13), abs=1e-12)


def test_one_seed_has_no_std_and_the_table_shows_the_mean_alone():
    from nbdistill.demo import summarize

    summary = summarize({m: [_FakeRun(m, 0)] for m in (BASELINE, KD)})
    assert all(math.isnan(row["student_acc_std"]) for row in summary["methods"].values())
    table = format_table(summary)
    assert "±" not in table and "nan" not in table
    kd_line = next(line for line in table.splitlines() if line.startswith(KD))
    assert kd_line.split()[1:3] == ["0.900", "0.900"]


class _FakeRun:
    max_epochs = None
    info: dict = {}

    def __init__(self, method, seed=0, acc=None):
        acc = (0.9 if method == KD else 0.8) if acc is None else acc
        self.method = method
        self.path = f"fake-{method}-{seed}"
        self.metrics = {"test/student_acc": acc, "test/agreement": acc, "test/kl": 0.1, "test/teacher_acc": 0.95}


def test_rejects_zero_seeds():
    with pytest.raises(ValueError, match="seeds"):
        run_demo(seeds=0, out_png=None, progress=False)
