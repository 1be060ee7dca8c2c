"""Runs the TypeScript unit tests (vitest: event parsing, chart data, polling) from pytest."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (ROOT / "node_modules" / "vitest").is_dir() or shutil.which("node") is None or shutil.which("jlpm") is None,
    reason="needs Node and the npm packages (`jlpm install`, which `pip install -e .` runs)",
)
def test_typescript_unit_tests():
    done = subprocess.run(["jlpm", "test"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout
