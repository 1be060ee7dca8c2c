"""The quality-vs-steps table: rows per model and step count, measured from samples, drawn by the view."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from nbdistill.core.errors import ConfigError
from nbdistill.core.views import VIEWS
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.metrics import energy_distance
from nbdistill.families.score.quality import ddim_draw, quality_log, quality_rows
from nbdistill.families.score.schedule import CosineVP


def test_rows_hold_each_model_at_each_step_count_with_measured_metrics():
    mixture = GaussianMixture.ring(k=4, radius=2.0, std=0.2)
    teacher = ExactDenoiser(mixture, CosineVP())
    data = mixture.sample(600, torch.Generator().manual_seed(5))
    rows = quality_rows({"teacher": teacher}, data, steps={"teacher": (1, 8)}, density=mixture, n=300, repeats=1)
    assert [(r["model"], r["steps"]) for r in rows] == [("teacher", 1), ("teacher", 8)]
    again = ddim_draw(teacher)(300, 8, torch.Generator().manual_seed(0))
    assert rows[1]["energy_distance"] == pytest.approx(energy_distance(again, data), rel=1e-6)
    assert rows[1]["energy_distance"] < rows[0]["energy_distance"], "8 exact ODE steps beat 1"
    assert rows[1]["mode_coverage"] == 1.0 and all(r["ms_per_1000"] > 0 for r in rows)


def test_a_draw_function_is_a_model_too_and_the_view_draws_the_table():
    data = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))

    def draw(n, steps, generator):
        return torch.randn(n, 2, generator=generator) * steps

    rows = quality_rows({"scaled noise": draw}, data, steps=(1, 3), n=200, repeats=1)
    assert rows[0]["energy_distance"] < rows[1]["energy_distance"]
    log = quality_log(rows)
    assert log.last("quality")["columns"][:2] == ["model", "steps"]
    ax = VIEWS["score_quality_table"](Figure().add_subplot(), log)
    assert ax.tables or ax.texts


def test_no_model_is_refused():
    with pytest.raises(ConfigError, match="at least one model"):
        quality_rows({}, torch.zeros(4, 2))


def test_a_table_made_outside_a_run_names_no_step():
    rows = [{"model": "teacher", "steps": 1, "energy_distance": 0.5}]
    ax = VIEWS["score_quality_table"](Figure().add_subplot(), quality_log(rows))
    assert ax.get_title() == "quality vs steps"
