"""End to end in JupyterLab and headless Chromium: the live panel trains, its figure updates, Stop stops.

Screenshots go to ``tests/_artifacts/`` (``panel-running-1.png``, ``panel-running-2.png``,
``panel-stopped.png`` and ``panel.png``, the panel alone while it trains). ``panel.png`` becomes
``docs/panel.png``, the picture the README shows, when that is missing or ``NBDISTILL_UPDATE_DOCS=1``
(so that running the tests does not rewrite a committed image every time). The score panel, mid-run:
``score-panel-running.png`` and ``score-panel.png`` (which becomes ``docs/score_panel.png`` the same way).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOK = Path(__file__).with_name("panel_demo.ipynb")
ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def wait_until(page, predicate, timeout: float, message: str) -> None:
    """Poll ``predicate`` while Playwright keeps delivering page events."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        page.wait_for_timeout(250)


def wait_for_redraws(page, image, redraws: int, timeout: float) -> None:
    """Wait until the figure ``image`` has shown ``redraws`` new pictures (each redraw is a new blob URL)."""
    sources = {image.get_attribute("src")}

    def redrawn() -> bool:
        sources.add(image.get_attribute("src"))
        return len(sources) > redraws

    wait_until(page, redrawn, timeout, f"{redraws} more redraws of the figure")


def collapse_left_sidebar(page) -> None:
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()


def test_panel_trains_live_and_stops_in_jupyterlab(lab_server, open_notebook):
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOK, Path(lab_server.root_dir) / NOTEBOOK.name)
    page = open_notebook(NOTEBOOK.name)  # runs all cells
    collapse_left_sidebar(page)  # the panel gets the whole width, as on a laptop with the sidebar closed

    panel = page.locator(".nbdistill-panel")
    panel.wait_for(timeout=300_000)  # importing torch and Lightning in a new kernel takes a while
    status = page.locator(".nbdistill-status")
    image = page.locator("img.nbdistill-figure")
    wait_until(page, lambda: "running" in status.inner_text(), 180, "the panel to say running")
    assert page.locator(".nbdistill-start").is_disabled()
    assert page.locator(".nbdistill-error").is_hidden()

    # The figure is redrawn while the run trains (a new PNG, so a new blob URL).
    wait_until(page, lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), 60, "the figure")
    first = image.get_attribute("src")
    page.screenshot(path=str(ARTIFACTS / "panel-running-1.png"))
    page.wait_for_timeout(2000)
    wait_until(page, lambda: image.get_attribute("src") != first, 60, "the figure to be redrawn")
    # let the views fill in (accuracy curve, per-class bars) before the picture for the docs
    wait_until(page, lambda: "val student acc" in status.inner_text(), 120, "a validation result")
    wait_for_redraws(page, image, 3, 120)
    assert image.evaluate("img => img.naturalWidth") >= 1000
    page.screenshot(path=str(ARTIFACTS / "panel-running-2.png"))
    panel.screenshot(path=str(ARTIFACTS / "panel.png"))
    if os.environ.get("NBDISTILL_UPDATE_DOCS") or not (DOCS / "panel.png").exists():
        DOCS.mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "panel.png", DOCS / "panel.png")

    # Stop: the label says stopped and so does the run folder.
    assert "running" in status.inner_text()
    page.locator(".nbdistill-stop").click()
    wait_until(page, lambda: "stopped" in status.inner_text(), 180, "the panel to say stopped")
    run_id = page.locator(".nbdistill-run-id code").inner_text().strip()
    info = json.loads((Path(lab_server.runs_root) / run_id / "run.json").read_text())
    assert info["status"] == "stopped" and info["ended"] is not None
    assert (Path(lab_server.runs_root) / run_id / "checkpoints" / "last.ckpt").is_file()
    assert page.locator(".nbdistill-start").is_enabled()
    assert page.locator(".nbdistill-error").is_hidden()
    page.wait_for_timeout(1500)  # the final redraw
    page.screenshot(path=str(ARTIFACTS / "panel-stopped.png"))


SCORE_NOTEBOOK = Path(__file__).with_name("score_panel_demo.ipynb")


def test_score_panel_draws_samples_live_and_stops(lab_server, open_notebook):
    """Mid-run, the score panel shows the student's samples over the data and the metric curves, redrawn."""
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(SCORE_NOTEBOOK, Path(lab_server.root_dir) / SCORE_NOTEBOOK.name)
    page = open_notebook(SCORE_NOTEBOOK.name)
    collapse_left_sidebar(page)

    panel = page.locator(".nbdistill-panel")
    panel.wait_for(timeout=300_000)
    status = page.locator(".nbdistill-status")
    image = page.locator("img.nbdistill-figure")
    wait_until(page, lambda: "running" in status.inner_text(), 180, "the panel to say running")
    assert "score.progressive" in page.locator(".nbdistill-panel select").first.input_value()
    # mid-run: an evaluation has measured the samples and the figure keeps being redrawn after it
    wait_until(page, lambda: "val energy distance" in status.inner_text(), 240, "a sample evaluation")
    wait_for_redraws(page, image, 2, 180)
    assert "running" in status.inner_text()
    assert page.locator(".nbdistill-error").is_hidden()
    assert image.evaluate("img => img.naturalWidth") >= 1000
    page.screenshot(path=str(ARTIFACTS / "score-panel-running.png"))
    panel.screenshot(path=str(ARTIFACTS / "score-panel.png"))
    if os.environ.get("NBDISTILL_UPDATE_DOCS") or not (DOCS / "score_panel.png").exists():
        DOCS.mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "score-panel.png", DOCS / "score_panel.png")

    run_id = page.locator(".nbdistill-run-id code").inner_text().strip()
    events = (Path(lab_server.runs_root) / run_id / "events.jsonl").read_text().splitlines()
    points = [json.loads(line) for line in events if '"samples/student"' in line]
    assert points and len(points[-1]["x"]) == 1000, "the run folder holds the student's samples the panel draws"

    page.locator(".nbdistill-stop").click()
    wait_until(page, lambda: "stopped" in status.inner_text(), 180, "the panel to say stopped")
    info = json.loads((Path(lab_server.runs_root) / run_id / "run.json").read_text())
    assert info["status"] == "stopped"
