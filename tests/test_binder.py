"""Binder opens the tour: `jupyter lab`, started with the config that binder/ writes, lands on it.

binder/postBuild runs binder/jupyter-config; this test runs the same script into a temporary
JUPYTER_CONFIG_DIR, starts `jupyter lab` with that config on a free local port and asks where `/`
redirects. (`jupyter lab` replaces ServerApp.default_url with its own LabApp.default_url, "/lab":
a config that set ServerApp's landed on /lab, not on the tour.)
"""

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOUR = "notebooks/00_tour.ipynb"

pytestmark = pytest.mark.slow  # starts a Jupyter server: a few seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> http.client.HTTPResponse:
    """GET without following redirects."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wait_until_serving(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 120  # a bound for a failing start, not a timing check
    while time.monotonic() < deadline:
        assert server.poll() is None, f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}"
        try:
            get(port, "/api/status")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"jupyter lab did not answer on port {port}:\n{log.read_text()[-3000:]}")


def test_jupyter_lab_with_binders_config_lands_on_the_tour(tmp_path):
    assert (ROOT / TOUR).is_file()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    subprocess.run([ROOT / "binder" / "jupyter-config"], env=env, check=True)  # as binder/postBuild runs it
    assert (tmp_path / "config" / "jupyter_server_config.py").is_file()

    port = free_port()
    log = tmp_path / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", f"--ServerApp.root_dir={ROOT}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root; Jupyter refuses that unless told
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until_serving(server, port, log)
        landing = get(port, "/")
        assert landing.status in (301, 302), landing.status
        location = landing.getheader("Location")
        assert urlsplit(location).path.endswith(f"/lab/tree/{TOUR}"), location
        assert get(port, location).status == 200  # JupyterLab's page for that notebook
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
