"""The tree is lint- and format-clean under the ruff pinned in the test extra (configured in
pyproject.toml). The README's test command runs ruff before pytest, and CI runs that command as
written; these tests keep the gate in the suite too, for the quick loop."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: it comes with the test extra (pip install -e '.[test]')")
    return [exe]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_is_clean(args):
    done = subprocess.run([*_ruff(), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"ruff {' '.join(args)} found problems:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"


def test_ci_runs_the_readme_test_command_as_written():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("Set up and run the tests:", 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]
    assert "ruff check ." in command and "python -m pytest" in command
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
