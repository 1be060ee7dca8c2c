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


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop in the main thread, which
    the asyncio-based Jupyter server fixtures of later tests would trip over."""
    items.sort(key=lambda item: "/browser/" in str(item.fspath).replace("\\", "/"))
