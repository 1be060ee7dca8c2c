"""The policy panel, headless: a method's name opens its family, controls for every hparam, a live
run whose figure draws the regret views and whose status line quotes the held-out regret ± its s.e."""

from __future__ import annotations

import math
import re

import pytest

import nbdistill as nd
from nbdistill.core.views import views_for
from nbdistill.widgets.run_state import RunState

PNG = b"\x89PNG\r\n\x1a\n"


def scalar(name, step, value):
    return {"step": step, "epoch": 0, "time": 0.0, "kind": "scalar", "name": name, "value": value}


def make(name, tmp_path, **kwargs):
    return nd.panel(
        name,
        student=nd.models.ICTransformer(num_actions=5, max_context=30, width=16, depth=1),
        data=nd.data.BernoulliBandits(arms=5, horizon=30, n_tasks=80, batch_size=40),
        runs_root=tmp_path / "runs",
        **kwargs,
    )


def test_a_policy_run_quotes_its_regret_with_its_standard_error(tmp_path):
    state = RunState("policy.dpt", "r1", tmp_path, max_epochs=4)
    state.on_progress(4, 40, {})
    assert "regret" not in state.status_line()
    state.on_event(scalar("val/regret", 4, 8.2449))
    assert "val regret 8.24" in state.status_line() and "±" not in state.status_line()
    state.on_event(scalar("val/regret_se", 4, 1.1638))
    assert "val regret 8.24 ± 1.16" in state.status_line()
    state.on_event(scalar("val/regret", 8, 5.0))
    assert "val regret 5 ± 1.16" in state.status_line()  # the latest of each


def test_a_method_name_opens_its_family_with_that_method(tmp_path):
    panel = make("policy.dpt", tmp_path)
    family = make("policy", tmp_path, method="policy.dpt")
    try:
        assert panel.method == "policy.dpt"
        assert list(panel._ui.method_dropdown.options) == nd.methods("policy")
        spec = nd.get_method("policy.dpt")
        assert list(panel._controls) == [h.name for h in spec.hparams]
        assert {"context_policy", "lr", "eval_tasks", "eval_horizon", "guide"} <= set(panel._controls)
        assert panel.hparams == spec.defaults() == family.hparams
        assert family.method == "policy.dpt"
    finally:
        panel.close()
        family.close()


def test_a_dpt_run_draws_the_regret_views_and_quotes_the_regret(tmp_path):
    panel = make("policy.dpt", tmp_path, max_epochs=2)
    try:
        assert "policy_regret" in views_for("policy.dpt")
        panel.start(eval_tasks=10)
        run = panel.wait(timeout=300)
        assert panel.status == "finished" and panel.error is None, panel.error
        assert panel.redraws >= 1 and panel.png.startswith(PNG)
        steps, regrets = run.log.scalars("val/regret")
        _, ses = run.log.scalars("val/regret_se")
        assert len(regrets) == 2 and all(math.isfinite(r) and r >= 0 for r in regrets)
        line = panel._ui.status_html.value
        quoted = re.search(r"val regret ([0-9.e+-]+) ± ([0-9.e+-]+)", line)
        assert quoted, line
        assert float(quoted.group(1)) == pytest.approx(regrets[-1], rel=5e-3)
        assert float(quoted.group(2)) == pytest.approx(ses[-1], rel=5e-3)
        curve = run.log.last("val/regret/student")
        assert curve is not None and len(curve["y"]) == 30, "the run folder holds the student's regret curve the panel draws"
    finally:
        panel.close()
