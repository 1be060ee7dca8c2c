"""The wheel carries the prebuilt JupyterLab extension, the server-extension config and the tutorials.

Builds the sdist and the wheel from this checkout, installs the wheel into a fresh virtual
environment and asks Jupyter there whether both extensions are enabled. The fresh environment
reaches the dependencies (torch, jupyterlab, ...) where the running test suite finds them, whichever
way it was installed (a venv, the system Python, PYTHONPATH): see :func:`fresh_venv`.
"""

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEXT = "share/jupyter/labextensions/nbdistill"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(*cmd, cwd=ROOT, **kwargs):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def section(listing: str, folder: Path) -> str:
    """The lines a `jupyter ... list` prints under its header for ``folder``."""
    lines = listing.splitlines()
    is_header = [line.strip().startswith(("/", "Config dir:")) for line in lines]
    start = [i for i, line in enumerate(lines) if is_header[i] and line.strip().endswith(str(folder))]
    assert start, f"{folder} not in:\n{listing}"
    out = []
    for line, header in zip(lines[start[0] + 1 :], is_header[start[0] + 1 :]):
        if header:
            break
        out.append(line)
    return "\n".join(out)


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    no_isolation = ["--no-isolation"] if importlib.util.find_spec("hatch_jupyter_builder") else []
    run(sys.executable, "-m", "build", "--sdist", "--wheel", *no_isolation, "--outdir", out)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_wheel_contents(dists):
    wheel, _ = dists
    names = zipfile.ZipFile(wheel).namelist()
    data = "nbdistill-0.1.0.data/data/"
    assert f"{data}{LABEXT}/package.json" in names
    assert f"{data}{LABEXT}/install.json" in names
    assert any(n.startswith(f"{data}{LABEXT}/static/remoteEntry.") for n in names)
    assert f"{data}etc/jupyter/jupyter_server_config.d/nbdistill.json" in names
    assert "nbdistill/server/handlers.py" in names
    shipped = {Path(n).name for n in names if n.startswith("nbdistill/notebooks/") and n.endswith(".ipynb")}
    in_repo = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert shipped and shipped == in_repo
    # no node_modules folder (webpack's chunk names may mention one: static/vendors-node_modules_...js)
    assert not [n for n in names if "node_modules" in Path(n).parts or "/.yarn/" in n]
    package = json.loads(zipfile.ZipFile(wheel).read(f"{data}{LABEXT}/package.json"))
    assert package["name"] == "nbdistill" and package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_sdist_carries_the_built_extension_but_no_node_modules(dists):
    _, sdist = dists
    names = tarfile.open(sdist).getnames()
    assert any(n.endswith("nbdistill/labextension/static/style.js") for n in names)
    assert any(n.endswith("/yarn.lock") for n in names) and any(n.endswith("/labextension/src/index.ts") for n in names)
    assert not [n for n in names if "/node_modules/" in n or "/.yarn/" in n]
    assert sdist.stat().st_size < 5_000_000


def fresh_venv(venv: Path) -> dict:
    """A new virtual environment at ``venv`` (nothing of nbdistill in it) that imports its
    dependencies from where this interpreter does; returns the environment to run it in.

    ``--system-site-packages`` would not do: run from a venv, it reaches the *base* interpreter's
    packages, not the venv's. Instead every folder on this interpreter's ``sys.path`` but the
    standard library and this checkout (and its tests/, which pytest puts there) goes into a ``.pth`` file of the new venv, after its own
    site-packages (so the wheel installed there is what imports); PYTHONPATH is dropped for the
    same reason (its folders are on ``sys.path`` and so in the ``.pth``).
    """
    run(sys.executable, "-m", "venv", venv)  # from a venv this makes one of the base interpreter, the same Python
    python = venv / "bin" / "python"
    stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}
    carried = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if (
            not path.is_dir()
            or path in (ROOT, ROOT / "tests")
            or path in stdlib
            or path.parent in stdlib
            and path.name == "lib-dynload"
        ):
            continue
        carried.append(str(path))
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    (Path(site_packages) / "_running_suite_env.pth").write_text("\n".join(dict.fromkeys(carried)) + "\n")
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def test_fresh_venv_has_both_extensions_enabled(dists, tmp_path):
    wheel, _ = dists
    venv = tmp_path / "venv"
    env = fresh_venv(venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel, env=env)
    code = "import nbdistill, nbdistill.tutorials as t, jupyterlab, torch; print(nbdistill.__file__); print(t.folder())"
    where = run(python, "-c", code, cwd=tmp_path, env=env).split()
    assert all(Path(p).is_relative_to(venv) for p in where[:2]), where

    labext = run(python, "-m", "jupyterlab.labextensions", "list", cwd=tmp_path, env=env)  # `jupyter labextension list`
    mine = section(labext, venv / "share" / "jupyter" / "labextensions")
    assert "nbdistill v0.1.0" in mine and "enabled" in mine and "OK" in mine and "(python, nbdistill)" in mine

    serverext = run(
        python, "-m", "jupyter_server.extension.serverextension", "list", cwd=tmp_path, env=env
    )  # `jupyter server extension list`
    mine = section(serverext, venv / "etc" / "jupyter")
    assert "nbdistill.server" in mine and "enabled" in mine
    assert "nbdistill.server  \x1b[32mOK" in mine or "nbdistill.server  OK" in mine
