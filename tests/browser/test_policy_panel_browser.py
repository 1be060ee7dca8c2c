"""The policy panel in JupyterLab and headless Chromium: a DPT run's live regret view, mid-run, then Stop.

Screenshots go to ``tests/_artifacts/``: ``policy-panel-running.png`` (the page) and ``policy-panel.png``
(the panel alone), which becomes ``docs/policy_panel.png`` when that is missing or ``NBDISTILL_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from test_panel_browser import ARTIFACTS, DOCS, collapse_left_sidebar, wait_for_redraws, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

POLICY_NOTEBOOK = Path(__file__).with_name("policy_panel_demo.ipynb")
QUOTED_REGRET = re.compile(r"val regret ([0-9.e+-]+) ± ([0-9.e+-]+)")


def test_policy_panel_draws_regret_live_and_stops(lab_server, open_notebook):
    """Mid-run, the policy panel quotes the held-out regret ± s.e. and keeps redrawing the regret curves."""
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(POLICY_NOTEBOOK, Path(lab_server.root_dir) / POLICY_NOTEBOOK.name)
    page = open_notebook(POLICY_NOTEBOOK.name)
    collapse_left_sidebar(page)

    panel = page.locator(".nbdistill-panel")
    panel.wait_for(timeout=300_000)
    status = page.locator(".nbdistill-status")
    image = page.locator("img.nbdistill-figure")
    wait_until(page, lambda: "running" in status.inner_text(), 180, "the panel to say running")
    assert page.locator(".nbdistill-panel select").first.input_value() == "policy.dpt"
    # mid-run: an evaluation has played the student on held-out tasks, and the figure is redrawn after it
    wait_until(page, lambda: QUOTED_REGRET.search(status.inner_text()) is not None, 240, "a held-out regret")
    wait_for_redraws(page, image, 2, 180)
    text = status.inner_text()
    assert "running" in text, text
    regret, se = (float(v) for v in QUOTED_REGRET.search(text).groups())
    assert regret >= 0 and se >= 0
    assert page.locator(".nbdistill-error").is_hidden()
    assert image.evaluate("img => img.naturalWidth") >= 1000
    page.screenshot(path=str(ARTIFACTS / "policy-panel-running.png"))
    panel.screenshot(path=str(ARTIFACTS / "policy-panel.png"))
    if os.environ.get("NBDISTILL_UPDATE_DOCS") or not (DOCS / "policy_panel.png").exists():
        DOCS.mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "policy-panel.png", DOCS / "policy_panel.png")

    run_id = page.locator(".nbdistill-run-id code").inner_text().strip()
    events = [json.loads(line) for line in (Path(lab_server.runs_root) / run_id / "events.jsonl").read_text().splitlines()]
    names = {e["name"] for e in events}
    assert {"val/regret", "val/regret_se", "val/regret/student", "val/regret/ucb"} <= names, sorted(names)
    curve = [e for e in events if e["name"] == "val/regret/student"][-1]
    assert len(curve["x"]) == 30 and len(curve["y"]) == 30, "the student's cumulative regret over the 30-step horizon"

    page.locator(".nbdistill-stop").click()
    wait_until(page, lambda: "stopped" in status.inner_text(), 180, "the panel to say stopped")
    info = json.loads((Path(lab_server.runs_root) / run_id / "run.json").read_text())
    assert info["status"] == "stopped" and info["ended"] is not None
