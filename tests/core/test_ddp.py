"""The same module trains under Lightning DDP with 2 CPU processes; only rank 0 writes the run folder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_ddp_two_cpu_processes_write_one_run_folder(tmp_path):
    root = tmp_path / "runs"
    script = Path(__file__).with_name("ddp_script.py")
    proc = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("RUN ") == 1, proc.stdout  # only rank 0 returns a Run
    folders = [p for p in root.iterdir()]
    assert len(folders) == 1, folders
    info = json.loads((folders[0] / "run.json").read_text())
    assert info["status"] == "finished" and info["method"] == "kd.hinton"
    events = [json.loads(line) for line in (folders[0] / "events.jsonl").read_text().splitlines()]
    losses = [e["step"] for e in events if e["name"] == "train/loss"]
    assert losses and len(losses) == len(set(losses)), "each step logged once, by rank 0 only"
    # 1078 training samples, batch 32 per process, 2 processes: 17 steps an epoch, 2 epochs
    assert (folders[0] / "checkpoints" / "last.ckpt").exists()
    val = [e for e in events if e["name"] == "val/student_acc"]
    assert len(val) == 2 and all(0 <= e["value"] <= 1 for e in val)
    ckpt_steps = max(e["step"] for e in events if e["name"].startswith("test/"))
    assert ckpt_steps == 34
