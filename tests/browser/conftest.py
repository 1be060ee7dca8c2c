"""Fixtures for end-to-end tests in a real JupyterLab and headless Chromium (Playwright).

- ``lab_server`` (session): ``jupyter lab`` on a free port with a random token, in a fresh root
  folder; kernels it starts write runs to ``lab_server.runs_root`` (``NBDISTILL_RUNS``). It has
  ``.url`` (ending in ``/``), ``.token``, ``.root_dir``, ``.runs_root``, ``.log`` and
  ``.lab_url(path)`` (a URL with the token).
- ``lab_context`` (session): a persistent Chromium context in a fresh profile folder.
- ``lab_page``: a new page in that context (1400×1100), closed after the test.
- ``open_notebook``: ``open_notebook(name, run_all=True)`` opens ``<root_dir>/<name>`` in
  ``lab_page`` in a fresh workspace, waits for its kernel, and runs all its cells (Run menu).
  Clicking a cell and pressing Shift+Enter right after the kernel connects did not always run it.

Every test under ``tests/browser`` is skipped, with the reason, when ``/usr/bin/chromium`` or
Playwright is missing. Screenshots belong in ``tests/_artifacts/`` (git-ignored): see ``ARTIFACTS``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("NBDISTILL_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
VIEWPORT = {"width": 1400, "height": 1100}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Seconds to wait for the server to answer (its extensions import torch: slow on a busy machine).
STARTUP_TIMEOUT = 240


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"browser tests need Chromium at {CHROMIUM} (set NBDISTILL_CHROMIUM to use another)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need Playwright: pip install playwright"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class LabServer:
    url: str
    token: str
    root_dir: Path
    runs_root: Path
    log: Path
    process: subprocess.Popen

    def lab_url(self, path: str = "lab") -> str:
        """``url`` + ``path`` with the token as a query parameter."""
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path.lstrip('/')}{sep}token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: User settings of the test lab: no "fetch Jupyter news?" toast over the screenshots, no update
#: checks (offline), and a notebook starts its kernel without a "Select Kernel" dialog.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}


def _write_settings(settings_dir: Path) -> None:
    for plugin, values in SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    root_dir, runs_root = base / "root", base / "root" / "nbdistill-runs"
    runs_root.mkdir(parents=True)
    for name in ("config", "data", "runtime", "settings", "workspaces", "ipython"):
        (base / name).mkdir()
    _write_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        NBDISTILL_RUNS=str(runs_root),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    log = base / "lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.port_retries=0",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root_dir, runs_root, log, process)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while not _answers(server.url, token):
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {STARTUP_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """End the server and the kernels it started (its own process group)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # kernels left behind, if any
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def lab_context(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def lab_page(lab_context):
    page = lab_context.new_page()
    page.set_viewport_size(VIEWPORT)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def open_notebook(lab_server, lab_page):
    def open_(name: str, run_all: bool = True, workspace: str | None = None):
        page = lab_page
        workspace = workspace or re.sub(r"[^A-Za-z0-9-]", "-", Path(name).stem)
        page.goto(lab_server.lab_url(f"lab/workspaces/{workspace}/tree/{name}?reset"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        dialog = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel", should the settings not apply
        try:
            dialog.wait_for(timeout=2_000)
            dialog.click()
        except PlaywrightTimeout:
            pass  # no dialog: the usual case
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
        if run_all:
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        return page

    return open_
