"""The graph examples run from the command line (shrunk to a few seconds)."""

import json
from pathlib import Path

import pytest
import torch

from nbdistill import cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("graph_mirage_bamotifs.yaml", ["--data.init_args.num_graphs", "40", "--data.init_args.batch_size", "8"]),
        ("graph_glnn_sbm.yaml", ["--data.init_args.num_nodes", "400", "--model.teacher_epochs", "10"]),
    ],
)
def test_graph_example_configs_train(name, overrides, runs_root, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # graphs this small run fastest on one thread
    try:
        args = ["fit", "--config", str(EXAMPLES / name), "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
        assert cli.main(args + overrides) == 0
    finally:
        torch.set_num_threads(threads)
    (folder,) = list(runs_root.iterdir())
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "finished" and info["method"] == name.split("_")[0] + "." + name.split("_")[1]
    assert '"name": "test/student_acc"' in (folder / "events.jsonl").read_text()
