"""End to end in headless Chromium: a run started from a notebook appears in the sidebar as running,
its chart grows in the viewer, Stop in the viewer makes it ``stopped``; the sidebar stops polling
while hidden; the launcher copies a tutorial into the working folder and opens it.

Screenshots go to ``tests/_artifacts/``: ``sidebar.png`` (a live run in the sidebar), ``viewer.png``
(its charts while it trains), ``stopped.png`` (after Stop), ``static-plot.png``.
"""

import json
import time
import uuid
from pathlib import Path

import nbformat
import pytest

import nbdistill as nd
from nbdistill.server.tutorials import list_tutorials

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
SIDEBAR = "#nbdistill-runs"
VIEWER = ".jp-nbdistill-viewer"


def open_lab(page, server, path="lab?reset"):
    page.goto(server.lab_url(path))
    page.wait_for_selector(".jp-LauncherCard, .jp-Notebook", timeout=90_000)


def show_sidebar(page):
    if not page.locator(SIDEBAR).is_visible():
        page.click(f'li[data-id="{SIDEBAR[1:]}"]')
    page.wait_for_selector(SIDEBAR, state="visible")


def points(page, selector) -> int:
    return int(page.locator(selector).first.get_attribute("data-points") or 0)


def wait_until(page, predicate, timeout=60.0, message="condition"):
    """Polls ``predicate`` while letting Playwright deliver page events (``time.sleep`` would not)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def write_notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def finished_run(lab_server):
    """A short real run, so the sidebar lists a finished run beside the live one."""
    return nd.fit(
        "kd.hinton",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        max_epochs=3,
        runs_root=lab_server.runs_root,
    )


def test_live_run_in_sidebar_viewer_and_stop(lab_server, lab_page, open_notebook, finished_run):
    page = lab_page
    ARTIFACTS.mkdir(exist_ok=True)
    run_id = f"e2e-live-{uuid.uuid4().hex[:6]}"
    write_notebook(
        Path(lab_server.root_dir) / "live_run.ipynb",
        "import nbdistill as nd\n"
        "run = nd.fit('kd.hinton', teacher=nd.zoo.teacher('digits-mlp'), student=nd.models.MLP(64, [16], 10),\n"
        f"             data=nd.data.Digits(), max_epochs=3000, run_id={run_id!r},\n"
        # long enough that a fast machine is still training when the test stops it; a point every
        # 100 steps keeps the charts below their decimation cap, so that they visibly grow
        "             trainer_kwargs={'log_every_n_steps': 100})\n"
        "print('final status:', run.status)",
    )
    open_notebook("live_run.ipynb", workspace="e2e-live")  # waits for the kernel, then runs all cells

    # The run appears in the sidebar as running, with its family, method and a sparkline.
    show_sidebar(page)
    row = f'{SIDEBAR} .jp-nbdistill-run[data-run-id="{run_id}"]'
    page.wait_for_selector(f'{row}[data-status="running"]', timeout=120_000)
    page.wait_for_function(
        "sel => Number(document.querySelector(sel)?.dataset.points) >= 6", arg=f"{row} .jp-nbdistill-spark", timeout=60_000
    )
    assert page.locator(f"{row} .jp-nbdistill-run-method").inner_text() == "kd.hinton"
    assert "kd" in page.locator(f"{row} .jp-nbdistill-run-id").inner_text()
    assert page.locator(f'{SIDEBAR} .jp-nbdistill-run[data-run-id="{finished_run.id}"][data-status="finished"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "sidebar.png"))

    # Its viewer shows charts that grow while it trains.
    page.click(row)
    chart = f'{VIEWER} .jp-nbdistill-line[data-group="train"]'
    page.wait_for_selector(chart, timeout=60_000)
    page.wait_for_selector(f'{VIEWER} .jp-nbdistill-line[data-group="val"]', timeout=60_000)
    first = points(page, chart)
    wait_until(page, lambda: points(page, chart) > first + 10, message="the training chart to grow")
    assert page.locator(f"{VIEWER} .jp-nbdistill-params").inner_text().count("temperature") == 1
    setting = page.locator(f"{VIEWER} .jp-nbdistill-setting").inner_text()
    assert "What was trained" in setting and "Digits" in setting and "train 1078" in setting
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))

    # Stop in the viewer writes the stop-request; the run ends as stopped everywhere.
    page.click(f"{VIEWER} .jp-nbdistill-stop")
    page.wait_for_selector(f'{VIEWER}[data-status="stopped"]', timeout=90_000)
    page.wait_for_selector(f'{row}[data-status="stopped"]', timeout=30_000)
    assert not page.locator(f"{VIEWER} .jp-nbdistill-stop").is_visible()
    page.wait_for_selector(".jp-OutputArea-output:has-text('final status: stopped')", state="attached", timeout=60_000)
    info = json.loads((Path(lab_server.runs_root) / run_id / "run.json").read_text())
    assert info["status"] == "stopped" and info["ended"] is not None
    assert (Path(lab_server.runs_root) / run_id / "stop-request").exists()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "stopped.png"))

    # The static plot is the run's matplotlib figure, drawn by the server.
    page.click(f"{VIEWER} .jp-nbdistill-plot-button")
    plot = f"{VIEWER} img.jp-nbdistill-static-plot"
    page.wait_for_function("sel => document.querySelector(sel)?.naturalWidth > 300", arg=plot, timeout=60_000)
    page.locator(plot).screenshot(path=str(ARTIFACTS / "static-plot.png"))


def test_sidebar_stops_polling_while_hidden(lab_server, lab_page):
    page = lab_page
    open_lab(page, lab_server, "lab/workspaces/e2e-hidden?reset")
    show_sidebar(page)
    page.wait_for_selector(f"{SIDEBAR} .jp-nbdistill-sidebar-summary")
    calls = []
    page.on("request", lambda r: calls.append(time.time()) if "/nbdistill/api/runs" in r.url else None)
    wait_until(page, lambda: len(calls) >= 1, timeout=20, message="the sidebar to poll")
    page.click(f'li[data-id="{SIDEBAR[1:]}"]')  # collapses the sidebar
    page.wait_for_selector(SIDEBAR, state="hidden")
    page.wait_for_timeout(500)
    hidden_at = len(calls)
    page.wait_for_timeout(10_000)
    assert len(calls) == hidden_at, "the hidden sidebar kept polling"
    show_sidebar(page)
    wait_until(page, lambda: len(calls) > hidden_at, timeout=5, message="polling to resume when shown")


def test_launcher_copies_and_opens_a_tutorial(lab_server, lab_page):
    page = lab_page
    tutorials = list_tutorials()
    assert tutorials, "no tutorial notebooks installed"
    first = tutorials[0]
    target = Path(lab_server.root_dir) / first["file"]
    target.unlink(missing_ok=True)
    open_lab(page, lab_server, "lab/workspaces/e2e-launcher?reset")
    page.locator(".jp-LauncherCard", has_text=first["title"]).first.click()
    page.wait_for_selector(f'.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("{first["file"]}")', timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    assert target.is_file() and json.loads(target.read_text())["cells"]
