"""The score family's views draw from empty, partial and full logs; its writers bound what they emit."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from nbdistill.core.errors import ConfigError
from nbdistill.core.logger import RunLogger
from nbdistill.core.run import EventLog, Run
from nbdistill.core.views import VIEWS
from nbdistill.families.score import views
from nbdistill.families.score.exact import GaussianMixture

NAMES = ["score_samples", "score_metrics", "score_quality_table"]


def axes():
    return Figure(figsize=(4.2, 3.4)).add_subplot()


def event(kind, name, step=0, **fields):
    return {"kind": kind, "name": name, "step": step, "epoch": 0, "time": 0.0, **fields}


def scalar(name, step, value):
    return event("scalar", name, step, value=value)


def png(ax):
    ax.figure.savefig(io.BytesIO(), format="png")


class Recorder:
    """What a RunWriter's points/histogram/table calls would emit, kept in memory."""

    def __init__(self):
        self.events = []

    def points(self, name, x, y, step=None, **extra):
        self.events.append(event("points", name, step or 0, x=list(x), y=list(y), **extra))
        return self.events[-1]

    def histogram(self, name, counts, edges, step=None, **extra):
        self.events.append(event("histogram", name, step or 0, counts=counts, edges=list(edges), **extra))
        return self.events[-1]

    def table(self, name, columns, rows, step=None):
        self.events.append(event("table", name, step or 0, columns=columns, rows=rows))
        return self.events[-1]


MIX = GaussianMixture.ring(k=8, radius=2.0, std=0.15)


def full_run(tmp_path, evaluations=6) -> Run:
    """A run folder written through a real RunWriter: density, data, teacher and student samples, metrics, table."""
    logger = RunLogger(root=tmp_path, run_id="score-run", method="score.test")
    writer = logger.experiment
    g = torch.Generator().manual_seed(0)
    views.write_density(writer, MIX, (-3, 3, -3, 3), bins=40)
    views.write_samples(writer, "samples/data", MIX.sample(3000, g), step=0)
    views.write_samples(writer, "samples/teacher", MIX.sample(1000, g), step=0, label="teacher, 50 steps")
    for i in range(1, evaluations + 1):
        step = 100 * i
        spread = 1.0 / i  # the student's samples contract onto the ring
        student = MIX.sample(800, g) * (1 + spread * 0.5) + spread * torch.randn(800, 2, generator=g, dtype=torch.float64)
        views.write_samples(writer, "samples/student", student, step=step, label="student, 1 step")
        for metric, value in (("energy_distance", 0.5 / i**2), ("sliced_wasserstein", 0.4 / i), ("mmd", 0.1 / i**3)):
            writer.scalar(f"val/{metric}", value, step=step)
        writer.scalar("val/mode_coverage", min(1.0, i / 4), step=step)
    writer.scalar("val/teacher_energy_distance", 0.01, step=step)
    views.write_quality(
        writer,
        [
            {"model": "teacher", "steps": 50, "energy_distance": 0.004, "mode_coverage": 1.0, "ms_per_1000": 31.0},
            {"model": "teacher", "steps": 1, "energy_distance": 0.9, "mode_coverage": 0.25, "ms_per_1000": 0.7},
            {
                "model": "student",
                "steps": 1,
                "energy_distance": 0.012,
                "mode_coverage": 1.0,
                "ms_per_1000": 0.6,
                "mode_precision": 0.97,
            },
        ],
        step=step,
    )
    logger.finalize("success")
    return Run(tmp_path / "score-run")


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_waits_for_data(name):
    ax = axes()
    assert VIEWS[name] is getattr(views, name)
    assert VIEWS[name](ax, EventLog()) is ax
    assert not ax.get_lines() and not ax.collections
    assert any("waiting" in t.get_text() for t in ax.texts)
    png(ax)


@pytest.mark.parametrize("name", NAMES)
def test_every_view_draws_a_full_run_read_back_from_its_folder(name, tmp_path):
    run = full_run(tmp_path)
    ax = axes()
    assert VIEWS[name](ax, run.log) is ax
    assert not any("waiting" in t.get_text() for t in ax.texts)
    png(ax)


def test_score_samples_draws_the_latest_student_over_the_density(tmp_path):
    run = full_run(tmp_path)
    ax = views.score_samples(axes(), run.log)
    assert len(ax.images) == 1 and ax.images[0].get_extent() == [-3, 3, -3, 3]  # the density/data grid
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert (
        labels[0] == "data density, 50/90% regions" and labels[1] == "teacher, 50 steps (n=1000)"
    )  # no data scatter over its density
    assert labels[2].startswith("student, 1 step (n=800")
    student = run.log.of("samples/student")[-1]
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), np.stack([student["x"], student["y"]], 1))
    assert "(step 600)" in ax.get_title()
    assert ax.get_xlim() == (-3, 3) and ax.get_ylim()[0] == -3  # the data's extent (and room for the legend above)


def test_mass_levels_outline_the_highest_density_regions():
    grid = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 10.0]])  # total 20: the top cell holds 50 %, the top three 85 %
    np.testing.assert_allclose(views._mass_levels(grid, (0.5, 0.85)), [3.0, 10.0])
    assert len(views._mass_levels(np.zeros((3, 3)), (0.5,))) == 0
    smooth = views._smooth(np.pad([[1.0]], 3))
    assert smooth.sum() == pytest.approx(1.0) and smooth[3, 3] == smooth.max() < 1  # blurred, mass kept away from the edges


def test_score_samples_counts_the_student_samples_outside_the_data_and_the_nonfinite_ones():
    rec = Recorder()
    data = MIX.sample(500, torch.Generator().manual_seed(1))
    views.write_samples(rec, "samples/data", data)
    far = torch.cat([data[:90], torch.full((10, 2), 50.0), torch.full((5, 2), float("nan"))])
    views.write_samples(rec, "samples/student", far, step=7)
    ax = views.score_samples(axes(), EventLog(rec.events))
    assert len(ax.images) == 1  # a histogram of the data points as the background
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "data (n=500), 50/90% regions",
        "student (n=105, 10% outside, 5 NaN/inf)",
    ]
    scatters = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert len(scatters) == 1  # the data is the background histogram (and its outlines), not a scatter
    assert ax.get_xlim()[1] < 50  # the axes span the data, not the diverged samples
    png(ax)


@pytest.mark.parametrize(
    "events, legend",
    [
        ([event("points", "samples/student", 3, x=[0.0, 1.0, None], y=[1.0, 0.5, 2.0])], ["student (n=2)"]),  # NaN read as None
        ([event("points", "samples/teacher", 0, x=[], y=[])], ["teacher (n=0)"]),
        (
            [event("histogram", "density/data", counts=[[0.1, 0.2], [0.3, 0.4]], edges=[0, 1, 2], y_edges=[0, 1, 2])],
            ["data density, 50/90% regions"],
        ),
        ([event("histogram", "density/data", counts=[1, 2], edges=[0, 1, 2])], None),  # a 1-D histogram: no density grid
        ([event("points", "samples/student_2steps", 5, x=[0.1], y=[0.2])], ["student_2steps (n=1)"]),
    ],
)
def test_score_samples_draws_partial_logs(events, legend):
    given = axes()
    ax = views.score_samples(given, EventLog(events))
    assert ax is given and ax.get_title().startswith("samples over the data")
    if legend is None:  # nothing it can draw: it says it waits
        assert [t.get_text() for t in ax.texts] == ["waiting for data…"]
    else:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == legend
    png(ax)


def test_score_metrics_draws_each_distance_on_a_log_axis_and_coverage_on_a_twin(tmp_path):
    run = full_run(tmp_path)
    ax = views.score_metrics(axes(), run.log)
    assert ax.get_yscale() == "log"
    lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"energy_distance", "sliced_wasserstein", "mmd"}
    np.testing.assert_allclose(lines["mmd"].get_xdata(), [100, 200, 300, 400, 500, 600])
    np.testing.assert_allclose(lines["energy_distance"].get_ydata(), 0.5 / np.arange(1, 7) ** 2)
    assert any(line.get_linestyle() == ":" and line.get_ydata()[0] == 0.01 for line in ax.get_lines())  # the teacher
    twin = [a for a in ax.figure.axes if a is not ax]
    assert len(twin) == 1
    np.testing.assert_allclose(twin[0].get_lines()[0].get_ydata(), [0.25, 0.5, 0.75, 1, 1, 1])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "mode coverage (100%)" and legend[0] == "energy_distance (0.0139)"


@pytest.mark.parametrize(
    "events, log_scale",
    [
        ([scalar("val/mmd", 1, 0.3)], False),
        ([scalar("val/mmd", 1, 0.3), scalar("val/mmd", 2, -0.01)], False),  # the unbiased MMD² can be negative
        ([scalar("val/energy_distance", 1, None), scalar("val/energy_distance", 2, 0.2)], False),
        ([scalar("val/mode_coverage", 1, 0.5)], False),
        ([scalar("val/sliced_wasserstein", s, 10.0**-s) for s in range(3)], True),
    ],
)
def test_score_metrics_draws_partial_logs(events, log_scale):
    ax = views.score_metrics(axes(), EventLog(events))
    assert (ax.get_yscale() == "log") == log_scale
    assert all(math.isfinite(v) for v in ax.get_ylim())
    png(ax)


def test_score_quality_table_shows_every_row_and_bolds_the_best_of_each_metric(tmp_path):
    run = full_run(tmp_path)
    ax = views.score_quality_table(axes(), run.log)
    table = ax.tables[0]
    header = [table[0, j].get_text().get_text() for j in range(5)]
    assert header == ["model", "steps", "energy", "modes", "ms/1k"]
    assert [table[3, j].get_text().get_text() for j in range(5)] == ["student", "1", "0.012", "100%", "0.6"]
    bold = {(i, j) for (i, j), cell in table.get_celld().items() if i > 0 and cell.get_text().get_fontweight() == "bold"}
    assert bold == {(1, 2), (1, 3), (3, 3), (3, 4), (3, 5)}  # lowest energy and time, highest coverage (a tie) and precision
    assert [table[i, 5].get_text().get_text() for i in range(4)] == ["in 3σ", "—", "—", "97%"]  # a column only one row has


def test_score_quality_table_draws_short_rows_and_missing_values():
    log = EventLog(
        [event("table", "quality", 4, columns=["model", "steps", "mmd"], rows=[["a", 2], ["b", 4, None], ["c", 1, 0.5]])]
    )
    ax = views.score_quality_table(axes(), log)
    assert ax.tables[0][1, 2].get_text().get_text() == "—"
    png(ax)


def test_write_samples_bounds_the_points_and_keeps_their_proportions():
    rec = Recorder()
    x = torch.cat([torch.zeros(4000, 2), torch.ones(1000, 2)])  # ordered by mode, 80 % / 20 %
    e = views.write_samples(rec, "samples/student", x, step=3, label="student")
    assert len(e["x"]) == len(e["y"]) == views.MAX_POINTS and e["n"] == 5000 and e["nonfinite"] == 0
    assert sum(v == 1.0 for v in e["x"]) == pytest.approx(400, abs=1)
    assert e["label"] == "student" and e["step"] == 3
    e = views.write_samples(rec, "samples/data", np.random.default_rng(0).normal(size=(50, 2)), max_points=10)
    assert len(e["x"]) == 10 and e["n"] == 50
    assert all(len(repr(v)) <= 8 for v in e["x"])  # 4 significant digits of the scale


def test_write_samples_emits_what_the_view_reads_through_a_real_writer(tmp_path):
    run = full_run(tmp_path, evaluations=1)
    for name, n in (("samples/data", 3000), ("samples/teacher", 1000), ("samples/student", 800)):
        (e,) = run.log.of(name)
        assert e["kind"] == "points" and e["n"] == n and len(e["x"]) == min(n, views.MAX_POINTS)
    (d,) = run.log.of("density/data")
    grid = np.asarray(d["counts"])
    assert grid.shape == (40, 40) and len(d["edges"]) == len(d["y_edges"]) == 41
    cell = (6 / 40) ** 2
    assert grid.sum() * cell == pytest.approx(1.0, abs=0.01)  # the mixture's density integrates to 1 on the grid


def test_writer_input_errors_are_config_errors():
    rec = Recorder()
    with pytest.raises(ConfigError, match=r"write_samples draws 2-D points \[n, 2\]; samples/student has shape \(5, 3\)"):
        views.write_samples(rec, "samples/student", torch.zeros(5, 3))
    with pytest.raises(ConfigError, match="names its event samples/<who>"):
        views.write_samples(rec, "student", torch.zeros(5, 2))
    with pytest.raises(ConfigError, match="max_points must be a positive integer"):
        views.write_samples(rec, "samples/student", torch.zeros(5, 2), max_points=0)
    with pytest.raises(ConfigError, match="write_density needs a density with log_prob"):
        views.write_density(rec, object(), (-1, 1, -1, 1))
    with pytest.raises(ConfigError, match="x_min < x_max"):
        views.write_density(rec, MIX, (1, -1, -1, 1))
    with pytest.raises(ConfigError, match="write_quality needs at least one row"):
        views.write_quality(rec, [{"model": "a"}])
    assert not rec.events
