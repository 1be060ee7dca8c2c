"""The Jupyter server extension: authenticated REST over the runs root (see :mod:`.handlers`).

Enabled by the ``jupyter_server_config.d/nbdistill.json`` that the wheel installs. The runs root is
``$NBDISTILL_RUNS`` if set, else ``<server root dir>/nbdistill-runs``; the extension then sets
``NBDISTILL_RUNS`` to it, so every kernel this server starts writes its runs where the sidebar
looks, whichever folder its notebook is in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

LABEXTENSION = "nbdistill"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbdistill.server"}]


def server_runs_root(root_dir: str, environ: dict[str, str] | os._Environ = os.environ) -> Path:
    """``$NBDISTILL_RUNS`` (relative to the server's working directory), else ``<root_dir>/nbdistill-runs``."""
    configured = environ.get("NBDISTILL_RUNS")
    if configured:
        return Path(configured).expanduser().absolute()
    return (Path(root_dir).expanduser() / "nbdistill-runs").absolute()


def labextension_installed() -> bool:
    from jupyter_core.paths import jupyter_path

    return any((Path(p) / LABEXTENSION / "package.json").is_file() for p in jupyter_path("labextensions"))


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .handlers import setup_handlers

    root = server_runs_root(server_app.root_dir)
    os.environ["NBDISTILL_RUNS"] = str(root)
    setup_handlers(server_app.web_app, root)
    server_app.log.info("nbdistill: serving the runs under %s", root)
    if not labextension_installed():
        server_app.log.warning(
            "nbdistill: the JupyterLab extension is not installed, so there is no runs sidebar. "
            "It is built with Node.js when the package is installed from source: install Node.js "
            "(>= 20) and run `pip install -e .` again, or install a released wheel."
        )
