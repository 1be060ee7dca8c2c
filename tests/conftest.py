import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _runs_root(tmp_path, monkeypatch):
    """Every test writes its runs under its own temporary folder."""
    root = tmp_path / "nbdistill-runs"
    monkeypatch.setenv("NBDISTILL_RUNS", str(root))
    return root


@pytest.fixture
def runs_root(_runs_root):
    return _runs_root


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Graphs this small run fastest on one thread (several threads mostly wait on each other).
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop in the main thread, which
    the asyncio-based Jupyter server fixtures of later tests would trip over."""
    items.sort(key=lambda item: "/browser/" in str(item.fspath).replace("\\", "/"))


@pytest.fixture
def run_example_config(tmp_path, runs_root):
    """``run(file, method, max_epochs=1, data=None)``: an ``examples/`` config through ``nbdistill fit``,
    shortened to ``max_epochs`` (``data``: init_args of the data module to override); asserts the
    config names ``method`` and its run finishes, and returns the run's ``run.json``."""
    import json
    from pathlib import Path

    import yaml

    from nbdistill import cli

    def run(file: str, method: str, max_epochs: int = 1, data: dict | None = None) -> dict:
        config = yaml.safe_load((Path(__file__).parents[1] / "examples" / file).read_text())
        assert config["method"] == method
        config["trainer"].update(max_epochs=max_epochs, enable_progress_bar=False)
        if data:
            config["data"]["init_args"].update(data)
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config))
        assert cli.main(["fit", "--config", str(path)]) == 0
        (folder,) = list(runs_root.iterdir())
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "finished" and info["method"] == method
        return info

    return run


@pytest.fixture
def example_hparams():
    """``hparams(file)``: the hyper-parameters an ``examples/`` config sets (the scalar keys of its
    ``model`` section), to compare with what the run recorded."""
    from pathlib import Path

    import yaml

    def hparams(file: str) -> dict:
        model = yaml.safe_load((Path(__file__).parents[1] / "examples" / file).read_text())["model"]
        return {k: v for k, v in model.items() if not isinstance(v, (dict, list))}

    return hparams
