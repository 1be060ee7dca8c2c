"""``nbdistill resume RUN_ID`` continues a stopped, lost or finished ``nbdistill fit`` run in its own
folder, and refuses in one line (exit 2, the run left as it was) what it cannot resume."""

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from nbdistill import cli
from nbdistill.core.callbacks import RunControl
from nbdistill.core.liveness import acquire_writer_lock, release_writer_lock

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kd_hinton_digits.yaml"


class StopAt(pl.Callback):
    """Asks the run to stop (as the panel's stop button does) once it reaches ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            for cb in trainer.callbacks:
                if isinstance(cb, RunControl):
                    cb.stop.request()


def _fit(tmp_path, runs_root, max_epochs: int, callbacks=()) -> Path:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["trainer"].update(max_epochs=max_epochs, enable_progress_bar=False)
    if callbacks:
        config["trainer"]["callbacks"] = list(callbacks)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["fit", "--config", str(path)]) == 0
    (folder,) = list(runs_root.iterdir())
    return folder


def _info(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def _epochs_done(folder: Path) -> int:
    return torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["epoch"]


def _train_steps(folder: Path) -> list[int]:
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    return [e["step"] for e in events if e["name"] == "train/loss"]


def _refused(capsys, args: list[str], expected: str, folder: Path) -> None:
    before = (folder / "run.json").read_bytes()
    assert cli.main(["resume", *args]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and expected in err[0], err
    assert (folder / "run.json").read_bytes() == before, "a refused resume must leave the run as it was"


def test_resume_trains_a_finished_run_further_in_its_folder_and_refuses_what_it_cannot(tmp_path, runs_root, capsys):
    folder = _fit(tmp_path, runs_root, max_epochs=2)
    steps_before = _train_steps(folder)
    assert _epochs_done(folder) == 2
    capsys.readouterr()

    _refused(capsys, [folder.name], f"run {folder.name} already finished its 2 epochs; give --max_epochs above 2", folder)
    _refused(capsys, [folder.name, "--max_epochs", "2"], "has already trained 2 epochs, which reaches max_epochs 2", folder)
    _refused(capsys, ["no-such-run"], "no run folder at no-such-run", folder)
    _refused(capsys, [folder.name, "--max_epochs", "0"], "--max_epochs must be a whole number of epochs, at least 1", folder)

    assert cli.main(["resume", folder.name, "--max_epochs", "4"]) == 0
    assert [p.name for p in runs_root.iterdir()] == [folder.name]  # the same folder, no new run
    info = _info(folder)
    assert info["status"] == "finished" and len(info["resumed"]) == 1 and _epochs_done(folder) == 4
    steps = _train_steps(folder)
    assert steps[: len(steps_before)] == steps_before and len(steps) > len(steps_before)
    assert steps == sorted(steps) and steps[len(steps_before)] > steps_before[-1]  # continued, not restarted
    out = capsys.readouterr().out
    assert f"run {folder.name}: finished" in out and "test/student_acc" in out

    # another process is training it: refused; once that writer is gone the run is `lost`, and resumable
    (folder / "run.json").write_text(json.dumps({**info, "status": "running"}))
    fd = acquire_writer_lock(folder)
    try:
        _refused(capsys, [folder.name, "--max_epochs", "5"], f"run {folder.name} is still being trained", folder)
    finally:
        release_writer_lock(fd)
    ckpt = folder / "checkpoints" / "last.ckpt"
    ckpt.rename(folder / "kept.ckpt")
    _refused(capsys, [folder.name, "--max_epochs", "5"], f"run {folder.name} has no checkpoint to resume from", folder)
    (folder / "kept.ckpt").rename(ckpt)
    (folder / "config.yaml").rename(folder / "kept.yaml")
    _refused(capsys, [folder.name, "--max_epochs", "5"], "was not started by `nbdistill fit` (no config.yaml", folder)
    (folder / "kept.yaml").rename(folder / "config.yaml")

    assert cli.main(["resume", folder.name, "--max_epochs", "5"]) == 0  # the lost run
    assert _info(folder)["status"] == "finished" and _epochs_done(folder) == 5


def test_resume_continues_a_stopped_run_to_its_own_target(tmp_path, runs_root, capsys):
    stop = {"class_path": f"{__name__}.StopAt", "init_args": {"step": 20}}  # in the second of 3 epochs
    folder = _fit(tmp_path, runs_root, max_epochs=3, callbacks=[stop])
    assert _info(folder)["status"] == "stopped" and (folder / "checkpoints" / "last.ckpt").exists()
    steps_before = _train_steps(folder)
    assert steps_before[-1] <= 20
    capsys.readouterr()

    assert cli.main(["resume", folder.name]) == 0
    assert [p.name for p in runs_root.iterdir()] == [folder.name]
    assert _info(folder)["status"] == "finished" and _epochs_done(folder) == 3
    steps = _train_steps(folder)
    assert steps[: len(steps_before)] == steps_before and steps == sorted(steps) and steps[-1] > 20
    assert f"run {folder.name}: finished" in capsys.readouterr().out
