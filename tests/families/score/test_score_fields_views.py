"""The ``score_fields`` writer records ``α_t μ − x_t`` of the real and fake denoisers; its view draws from any log."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from nbdistill.core.errors import ConfigError
from nbdistill.core.run import EventLog
from nbdistill.core.views import VIEWS
from nbdistill.families.score import fields_views
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.schedule import CosineVP

MIX = GaussianMixture.ring(k=4, radius=1.5, std=0.2)
OTHER = GaussianMixture.ring(k=4, radius=0.5, std=0.2)


class Recorder:
    """What a RunWriter's ``points`` call would emit, kept in memory."""

    def __init__(self):
        self.events = []

    def points(self, name, x, y, step=None, **extra):
        self.events.append(
            {"kind": "points", "name": name, "step": step or 0, "epoch": 0, "time": 0.0, "x": list(x), "y": list(y), **extra}
        )
        return self.events[-1]


def module(fake_mixture=OTHER):
    schedule = CosineVP()
    return types.SimpleNamespace(
        teacher=ExactDenoiser(MIX, schedule), fake_score=ExactDenoiser(fake_mixture, schedule), noise=schedule, _trainer=None
    )


def axes():
    return Figure(figsize=(6, 2.6)).add_subplot()


def test_view_is_registered_and_draws_from_an_empty_log():
    assert VIEWS["score_fields"] is fields_views.score_fields
    ax = fields_views.score_fields(axes(), EventLog())
    assert any("waiting" in t.get_text() for t in ax.texts)


def test_arrows_are_sigma_squared_times_the_exact_score():
    """In float64: ``α_t μ(x_t) − x_t`` equals ``σ_t² ∇ log p_t(x_t)`` of the mixture (Tweedie)."""
    schedule = CosineVP()
    xt = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = 0.35
    arrows = fields_views.score_field_arrows(ExactDenoiser(MIX, schedule), schedule, xt, t)
    tt = torch.tensor(t, dtype=torch.float64)
    expected = schedule.sigma(tt) ** 2 * MIX.score(xt, schedule.alpha(tt), schedule.sigma(tt))
    torch.testing.assert_close(arrows, expected, rtol=1e-10, atol=1e-12)


def test_writer_emits_one_bounded_event_with_both_fields():
    rec = Recorder()
    points = MIX.sample(500, torch.Generator().manual_seed(1))
    event = fields_views.write_score_fields(rec, module(), step=7, points=points)
    assert len(rec.events) == 1 and event["name"] == "score_fields" and event["step"] == 7
    assert len(event["x"]) == fields_views.GRID**2 and len(event["times"]) == len(fields_views.FIELD_TIMES)
    lo, hi = points.min(0).values, points.max(0).values
    assert event["extent"][0] < float(lo[0]) and event["extent"][1] > float(hi[0])
    # the recorded real arrows at the middle level equal the teacher's, to the 4 digits kept
    m = module()
    xt = torch.tensor(np.stack([event["x"], event["y"]], 1), dtype=torch.float32)
    real = fields_views.score_field_arrows(m.teacher, m.noise, xt, event["times"][1])
    torch.testing.assert_close(torch.tensor([event["real_u"][1], event["real_v"][1]]).T, real.float(), rtol=0, atol=2e-3)
    fields = [np.asarray(event[k]) for k in ("real_u", "real_v", "fake_u", "fake_v")]
    assert all(f.shape == (3, fields_views.GRID**2) for f in fields)
    assert not np.allclose(fields[0], fields[2], atol=1e-3)  # two different mixtures, two different fields


def test_writer_without_a_run_writes_nothing_and_refuses_bad_grids():
    assert fields_views.write_score_fields(None, module(), step=0) is None
    with pytest.raises(ConfigError, match="grid"):
        fields_views.write_score_fields(Recorder(), module(), step=0, grid=1)
    with pytest.raises(ConfigError, match="times"):
        fields_views.write_score_fields(Recorder(), module(), step=0, times=(0.0, 2.0))
    with pytest.raises(ConfigError, match="fake_score"):
        fields_views.write_score_fields(Recorder(), types.SimpleNamespace(teacher=module().teacher, noise=CosineVP()), step=0)


def test_view_draws_one_panel_per_level_and_survives_a_broken_event():
    rec = Recorder()
    fields_views.write_score_fields(rec, module(), step=3, times=(0.1, 0.6))
    ax = fields_views.score_fields(axes(), EventLog(rec.events))
    assert len(ax.child_axes) == 2
    assert all(len(child.collections) == 2 for child in ax.child_axes)  # a quiver for the real and the fake field
    assert "step 3" in ax.get_title()
    ax.figure.savefig(io.BytesIO(), format="png")
    broken = dict(rec.events[0], real_u=[[1.0, 2.0]])
    ax = fields_views.score_fields(axes(), EventLog([broken]))
    assert any("waiting" in t.get_text() for t in ax.texts)


def test_equal_fields_show_no_gap():
    rec = Recorder()
    fields_views.write_score_fields(rec, module(MIX), step=0)
    ax = fields_views.score_fields(axes(), EventLog(rec.events))
    assert all("gap 0%" in child.get_title() for child in ax.child_axes)
