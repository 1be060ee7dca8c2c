"""``nbdistill fit`` speaks like the Python API: one clear line for a bad key or value (the parser's
usage only on request), and a summary of the run when it ends."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import yaml

from nbdistill import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kd_hinton_digits.yaml"


class Boom(pl.Callback):
    """Fails training at its third step (a run that fails while it trains)."""

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= 3:
            raise RuntimeError("the GPU caught fire")


def _config(tmp_path, change=None, name="c.yaml") -> Path:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["trainer"].update(max_epochs=1, enable_progress_bar=False)
    if change:
        change(config)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err[:3000]}"
    assert "usage" not in err.lower() and "Union subtypes" not in err
    return lines[0]


def _typo_in_yaml(config):
    config["model"]["temprature"] = 2


def _top_level_typo(config):
    config["trainr"] = config.pop("trainer")


@pytest.mark.parametrize(
    "args, change, expected",
    [
        (
            ["--model.temprature", "2"],
            None,
            "nbdistill fit: error: kd.hinton: unknown hyper-parameter(s) ['temprature']; it takes "
            "['alpha', 'lr', 'temperature', 'weight_decay'] (besides student, teacher, teachers). Did you mean 'temperature'?",
        ),
        (
            [],
            _typo_in_yaml,
            "nbdistill fit: error: kd.hinton: unknown hyper-parameter(s) ['temprature']; it takes "
            "['alpha', 'lr', 'temperature', 'weight_decay'] (besides student, teacher, teachers). Did you mean 'temperature'?",
        ),
        (
            ["--model.temperature", "hot"],
            None,
            "nbdistill fit: error: kd.hinton: hyper-parameter 'temperature' must be a number, got 'hot'",
        ),
        (
            ["--model.init_args.alpha=2"],
            None,
            "nbdistill fit: error: kd.hinton: hyper-parameter 'alpha' = 2.0 is outside its range [0.0, 1.0]",
        ),
        (
            ["--trainer.max_epocs", "2"],
            None,
            "nbdistill fit: error: trainer: unknown option(s) ['max_epocs'] (pytorch_lightning.Trainer has no such "
            "argument). Did you mean 'max_epochs'? `nbdistill fit --help` lists every option.",
        ),
        (
            ["--trainer.max_epochs", "three"],
            None,
            "nbdistill fit: error: trainer.max_epochs must be a whole number, got 'three'",
        ),
        (
            ["--trainer.max_epochs", "-1"],
            None,
            "nbdistill fit: error: max_epochs must be at least 1, got -1",
        ),
        (
            ["--data.init_args.batchsize", "32"],
            None,
            "nbdistill fit: error: data Digits: unknown argument(s) ['batchsize']; it takes",
        ),
        (
            ["--data.batch_size", "many"],
            None,
            "nbdistill fit: error: data.batch_size must be a whole number, got 'many'",
        ),
        ([], _top_level_typo, "nbdistill fit: error: unknown key 'trainr' in the config. Did you mean 'trainer'?"),
    ],
)
def test_a_bad_key_or_value_is_one_clear_line(tmp_path, runs_root, capsys, args, change, expected):
    assert cli.main(["fit", "--config", str(_config(tmp_path, change)), *args]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(expected), line
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_the_parser_usage_only_on_request(tmp_path, runs_root, capsys):
    config = str(_config(tmp_path))
    assert cli.main(["fit", "-v", "--config", config, "--model.temprature", "2"]) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Option 'temprature' is not accepted" in err
    assert cli.main(["fit", "--help"]) == 0
    assert "--trainer.max_epochs" in capsys.readouterr().out
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_a_finished_fit_prints_its_id_folder_status_and_metrics(tmp_path, runs_root, capsys):
    assert cli.main(["fit", "--config", str(_config(tmp_path))]) == 0
    (folder,) = list(runs_root.iterdir())
    out = capsys.readouterr().out
    assert f"run {folder.name}: finished" in out and str(folder.resolve()) in out
    assert "test/student_acc" in out and "val/student_acc" in out


def test_a_failed_fit_prints_why_and_exits_1(tmp_path, runs_root, capsys):
    def boom(config):
        config["trainer"]["callbacks"] = [{"class_path": f"{__name__}.Boom"}]

    assert cli.main(["fit", "--config", str(_config(tmp_path, boom))]) == 1
    (folder,) = list(runs_root.iterdir())
    captured = capsys.readouterr()
    assert f"run {folder.name}: failed" in captured.out and "RuntimeError: the GPU caught fire" in captured.out
    assert "the run failed" in captured.err and "Traceback" not in captured.err


def test_the_checks_let_through_what_the_parser_accepts():
    from nbdistill.core.cli_checks import check_config
    from nbdistill.core.cli_fit import expand_config

    config, _ = expand_config(yaml.safe_load(EXAMPLE.read_text()))
    check_config(
        config,
        [
            "--trainer.callbacks+=pytorch_lightning.callbacks.LearningRateMonitor",
            "--model.init_args.lr",
            "1e-3",  # YAML 1.1 reads this as a string; jsonargparse (and so the check) as a number
            "--model.student.init_args.hidden=[16]",
            "--data.init_args.batch_size=32",
            "--trainer.max_epochs",
            "3",
        ],
    )
    check_config({}, ["--model", "model.yaml", "--data", "Digits"])  # a config file, a short class name


def test_parser_errors_the_checks_do_not_catch_are_condensed_to_one_line():
    from nbdistill.core.cli_checks import summarize_parser_error

    nested = (
        'Parser key "data":\n  Does not validate against any of the Union subtypes\n  Subtypes: [...]\n  Errors:\n'
        "    - Problem with given class_path 'nbdistill.data.Digits':\n        Parser key \"batch_size\":\n"
        "          Expected a <class 'int'>. Got value: x\n    - Expected a <class 'NoneType'>\n"
        "  Given value type: <class 'jsonargparse._util.NestedArg'>\n  Given value: NestedArg(key='batch_size', val='x')"
    )
    assert summarize_parser_error(nested) == "data.batch_size must be a whole number, got 'x'"
    union = (
        'Parser key "seed_everything":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
        "    - Expected a <class 'bool'>\n    - Expected a <class 'int'>\n  Given value type: <class 'str'>\n  Given value: x"
    )
    assert summarize_parser_error(union) == "seed_everything must be true or false or a whole number, got 'x'"
    assert summarize_parser_error("unrecognized arguments: fit --nope 2").startswith("unknown option(s) --nope 2;")
