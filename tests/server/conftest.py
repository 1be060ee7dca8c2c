"""Fixtures for the server-extension tests: pytest-jupyter's server fixtures and run folders."""

import json
import shutil
import time

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp, ... and their hooks)

import nbdistill as nd


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbdistill.server": True}}}


@pytest.fixture(scope="session")
def _finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("session-runs")
    run = nd.fit(
        "kd.hinton",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        max_epochs=2,
        runs_root=root,
        run_id="real-hinton",
    )
    return run.path


@pytest.fixture
def finished_run(_finished_run, runs_root):
    """A real finished ``kd.hinton`` run, copied into this test's runs root."""
    runs_root.mkdir(parents=True, exist_ok=True)
    return shutil.copytree(_finished_run, runs_root / _finished_run.name)


@pytest.fixture
def make_run(runs_root):
    """Writes a run folder by hand: ``make_run(id, status=..., lines=[...])``."""

    def make(run_id, status="running", lines=(), **info):
        folder = runs_root / run_id
        folder.mkdir(parents=True)
        info = {
            "id": run_id,
            "family": "kd",
            "method": "kd.hinton",
            "hparams": {"temperature": 4.0},
            "status": status,
            "error": None,
            "started": time.time() - 5,
            "ended": None,
            **info,
        }
        (folder / "run.json").write_text(json.dumps(info))
        (folder / "events.jsonl").write_text("".join(line + "\n" for line in lines))
        return folder

    return make
