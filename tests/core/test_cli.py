import json
from pathlib import Path

import yaml

from nbdistill import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kd_hinton_digits.yaml"


def _config(tmp_path, **model):
    config = yaml.safe_load(EXAMPLE.read_text())
    config["model"].update(model)
    config["trainer"]["max_epochs"] = 1
    config["trainer"]["enable_progress_bar"] = False
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_fit_from_config_writes_a_run_folder_and_runs_lists_it(tmp_path, runs_root, capsys):
    assert cli.main(["fit", "--config", str(_config(tmp_path)), "--model.temperature", "6"]) == 0
    (folder,) = list(runs_root.iterdir())
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "finished" and info["method"] == "kd.hinton" and info["hparams"]["temperature"] == 6.0
    assert (folder / "config.yaml").exists() and (folder / "checkpoints" / "last.ckpt").exists()
    capsys.readouterr()
    assert cli.main(["runs"]) == 0
    out = capsys.readouterr().out
    assert folder.name in out and "finished" in out and "kd.hinton" in out


def test_fit_refuses_bad_config_before_training(tmp_path, runs_root, capsys):
    assert cli.main(["fit", "--config", str(_config(tmp_path, temperature=0.1))]) == 2
    assert "'temperature' = 0.1 is outside its range" in capsys.readouterr().err
    student = {"class_path": "nbdistill.models.MLP", "init_args": {"in_features": 64, "hidden": [8], "out_features": 3}}
    assert cli.main(["fit", "--config", str(_config(tmp_path, student=student))]) == 2
    assert "the student outputs 3 classes but the teacher outputs 10" in capsys.readouterr().err
    assert cli.main(["fit", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_unknown_method_in_config(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("method: kd.nope\n")
    assert cli.main(["fit", "--config", str(path)]) == 2
    assert "unknown method 'kd.nope'" in capsys.readouterr().err


def test_runs_on_an_empty_root(capsys, runs_root):
    assert cli.main(["runs"]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_lab_copies_the_tutorials_and_opens_the_tour(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lab", "--no-browser"]) == 0
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "jupyter", "lab"] and cmd[4].endswith("nbdistill-tutorials/00_tour.ipynb")
    assert "--no-browser" in cmd
    assert (tmp_path / "nbdistill-tutorials" / "00_tour.ipynb").exists()
