"""The KD comparison table: gap closed, mean ± std over seeds, the order of rows."""

import math
import statistics

import pytest

import nbdistill as nd
from nbdistill.families.kd.compare import (
    Result,
    comparison_rows,
    format_table,
    gap_closed,
    mean_std,
    run_comparison,
    sample_std,
)


def test_gap_closed_by_hand():
    assert gap_closed(0.93, 0.90, 0.97) == pytest.approx(3 / 7)
    assert gap_closed(0.88, 0.90, 0.97) == pytest.approx(-2 / 7)  # worse than the student alone
    assert math.isnan(gap_closed(0.9, 0.95, 0.95))


def test_sample_std_by_hand():
    """ddof = 1 over seeds: deviations of 0.91, 0.93, 0.98 from their mean 0.94 are -0.03, -0.01, +0.04,
    so s = sqrt((0.0009 + 0.0001 + 0.0016) / (3 - 1)) = sqrt(0.0013) = 0.01·sqrt(13) (not sqrt(0.0026 / 3))."""
    values = [0.91, 0.93, 0.98]
    assert sample_std(values) == pytest.approx(math.sqrt(0.0013), abs=1e-12)
    assert sample_std(values) != pytest.approx(math.sqrt(0.0026 / 3), abs=1e-6)
    assert mean_std(values) == pytest.approx((0.94, math.sqrt(0.0013)), abs=1e-12)
    assert sample_std([0.5, 0.5]) == 0.0
    assert math.isnan(sample_std([0.9])) and math.isnan(sample_std([]))


def test_one_seed_row_prints_the_mean_alone():
    results = [Result("kd.student_only", 0, 0.90, 0.97, 0.4), Result("kd.hinton", 0, 0.93, 0.97, 0.5)]
    rows, _ = comparison_rows(results)
    assert math.isnan(rows[2][2])
    assert "| kd.hinton | 93.00 | +43 % | 0.50 | 1 |" in format_table(rows)


class _FinishedRun:
    method = "kd.hinton"
    max_epochs = 4
    info = {"started": 100.0, "ended": 102.0}
    metrics = {"test/student_acc": 0.93, "test/teacher_acc": 0.97, "test/agreement": 0.9}


def test_result_from_run_reads_the_metrics_and_the_wall_time():
    run = _FinishedRun()
    result = Result.from_run(run, seed=3)
    assert (result.method, result.seed, result.student_acc, result.teacher_acc) == ("kd.hinton", 3, 0.93, 0.97)
    assert result.seconds_per_epoch == pytest.approx(0.5) and result.run is run
    assert Result.from_run(run, "renamed", epochs=2).seconds_per_epoch == pytest.approx(1.0)
    run.metrics = {"test/student_acc": 0.5}
    assert math.isnan(Result.from_run(run).teacher_acc)


def test_rows_mean_std_and_order():
    results = [Result("kd.hinton", s, a, 0.97, 0.5) for s, a in enumerate([0.92, 0.94, 0.93])]
    results += [Result("kd.student_only", s, a, 0.97, 0.4) for s, a in enumerate([0.89, 0.91, 0.90])]
    rows, teacher = comparison_rows(results)
    assert teacher == pytest.approx(0.97)
    assert [r[0] for r in rows] == ["teacher", "kd.student_only", "kd.hinton"]
    _, mean, std, closed, seconds, seeds = rows[2]
    assert mean == pytest.approx(0.93) and std == pytest.approx(statistics.stdev([0.92, 0.94, 0.93]))
    assert closed == pytest.approx((0.93 - 0.90) / (0.97 - 0.90)) and seconds == 0.5 and seeds == 3
    assert rows[1][3] == pytest.approx(0.0)
    text = format_table(rows)
    assert "| kd.hinton | 93.00 ± 1.00 | +43 % | 0.50 | 3 |" in text
    with pytest.raises(ValueError, match="student_only"):
        comparison_rows(results[:3])


@pytest.mark.slow
def test_run_comparison_end_to_end():
    teacher = nd.zoo.teacher("digits-mlp")
    results = run_comparison(
        ["kd.hinton"],
        lambda seed: nd.models.MLP(64, [8], 10),
        teacher,
        lambda seed: nd.data.Digits(n_train=60, seed=seed),
        seeds=(0, 1),
        max_epochs=1,
    )
    assert [(r.method, r.seed) for r in results] == [
        ("kd.student_only", 0),
        ("kd.student_only", 1),
        ("kd.hinton", 0),
        ("kd.hinton", 1),
    ]
    assert all(0 <= r.student_acc <= 1 and r.seconds_per_epoch > 0 for r in results)
    _, teacher_acc = comparison_rows(results)
    assert teacher_acc == pytest.approx(nd.zoo.info("digits-mlp")["test_acc"])
