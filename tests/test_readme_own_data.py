"""The README's "Your own data" section runs as written: its python blocks, in order, in one namespace."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def section_blocks(title: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_its_examples():
    blocks = section_blocks("Your own data")
    assert len(blocks) >= 3
    joined = "\n".join(blocks)
    for shown in ("data=(X, y)", "as_datamodule", "pd.DataFrame", "DataLoader", "graph.glnn", "graph.mirage"):
        assert shown in joined, shown


def test_the_code_blocks_run_as_written(tmp_path, monkeypatch, runs_root):
    pytest.importorskip("pandas")
    pytest.importorskip("torch_geometric")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, block in enumerate(section_blocks("Your own data")):
            exec(compile(block, f"README.md 'Your own data' block {i + 1}", "exec"), namespace)
    assert namespace["run"].status == "finished"
    assert namespace["dm"].num_classes == 2 and namespace["dm"].input_shape == (8,)
    statuses = [r.status for r in __import__("nbdistill").runs.list()]
    assert len(statuses) == 6 and set(statuses) == {"finished"}
