"""Every dataset.* method through nd.fit (and the CLI), bad input refused before training, FTD → MTT."""

import json
from pathlib import Path

import pytest
import torch
import yaml

import nbdistill as nd
from nbdistill import cli
from nbdistill.core.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
METHODS = [
    "dataset.cda",
    "dataset.datm",
    "dataset.dc",
    "dataset.dm",
    "dataset.ftd",
    "dataset.mtt",
    "dataset.set",
    "dataset.tesla",
]
TINY_TRAJECTORY = {
    "syn_steps": 2,
    "expert_epochs": 1,
    "max_start_epoch": 2,
    "num_experts": 1,
    "expert_train_epochs": 3,
    "batch_syn": 10,
}
TINY = {
    "dataset.dc": {"outer_loop": 2, "inner_loop": 1, "batch_real": 8},
    "dataset.dm": {"batch_real": 8},
    "dataset.cda": {"squeeze_epochs": 1},
    "dataset.datm": {**TINY_TRAJECTORY, "initial_max_start_epoch": 1, "expansion_end": 2},
    "dataset.set": {**TINY_TRAJECTORY, "gradient_penalty": 0.0},
    "dataset.tesla": {**TINY_TRAJECTORY, "soft_labels": True},
}


def _data():
    return nd.data.Digits(image=True, n_train=60, batch_size=30)  # two outer iterations an epoch


def _student(norm="instance"):
    return nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1, norm=norm)


def test_every_method_is_registered():
    assert nd.methods("dataset") == METHODS
    for name in METHODS:
        assert not nd.get_method(name).needs_teacher


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_and_measures_its_synthetic_set(method):
    hparams = dict(TINY.get(method, TINY_TRAJECTORY if method in ("dataset.mtt", "dataset.ftd") else {}))
    run = nd.fit(
        method,
        student=_student("batch" if method == "dataset.cda" else "instance"),
        data=_data(),
        max_epochs=1,
        ipc=1,
        eval_epochs=2,
        **hparams,
    )
    assert run.status == "finished"
    assert 0.0 <= run.metrics["test/student_acc"] <= 1.0
    assert run.log.of("dd/images") and run.log.last("dd/images")["png"]
    assert torch.isfinite(run.module.images).all() and run.module.images.shape == (10, 1, 8, 8)
    run.plot()


def test_ftd_without_flatness_or_ema_is_mtt():
    common = dict(TINY_TRAJECTORY, ipc=1, eval_epochs=1, seed=3, max_epochs=1, data=_data())
    mtt = nd.fit("dataset.mtt", student=_student(), **common)
    ftd = nd.fit("dataset.ftd", student=_student(), rho=0.0, ema_decay=0.0, **common)
    assert torch.allclose(mtt.module.images, ftd.module.images, atol=1e-6)
    assert torch.allclose(ftd.module.distilled()[0], ftd.module.images)


def test_bad_input_is_refused_before_training(runs_root):
    flat = nd.data.Digits(n_train=60)
    with pytest.raises(ConfigError, match="augment=True needs image inputs"):
        nd.fit("dataset.dm", student=nd.models.MLP(64, [8], 10), data=flat)
    with pytest.raises(ConfigError, match="batch norm"):
        nd.fit("dataset.mtt", student=_student("batch"), data=_data())
    with pytest.raises(ConfigError, match="has no batch norm"):
        nd.fit("dataset.cda", student=_student(), data=_data())
    with pytest.raises(ConfigError, match="smallest class"):
        nd.fit("dataset.dm", student=_student(), data=_data(), ipc=50)
    with pytest.raises(ConfigError, match="raise expert_train_epochs"):
        nd.fit("dataset.mtt", student=_student(), data=_data(), ipc=1, max_start_epoch=20, expert_train_epochs=10)
    with pytest.raises(ConfigError, match="not one of"):
        nd.fit("dataset.mtt", student=_student(), data=_data(), ipc=1, gradient="implicit")
    assert not runs_root.exists() or not any(p.name != "experts" for p in runs_root.iterdir())


def test_cli_runs_an_example_config(tmp_path, runs_root):
    config = yaml.safe_load((EXAMPLES / "dataset_dm_digits.yaml").read_text())
    config["model"].update(ipc=1, eval_epochs=1, batch_real=8)
    config["model"]["student"]["init_args"].update(width=4, depth=1)
    config["data"]["init_args"].update(n_train=60, batch_size=30)
    config["trainer"].update(max_epochs=1, enable_progress_bar=False, check_val_every_n_epoch=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["fit", "--config", str(path)]) == 0
    (folder,) = [p for p in runs_root.iterdir() if p.name != "experts"]
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "finished" and info["method"] == "dataset.dm" and info["hparams"]["ipc"] == 1


def test_example_configs_name_registered_methods():
    for path in EXAMPLES.glob("dataset_*.yaml"):
        assert yaml.safe_load(path.read_text())["method"] in METHODS


def test_mnist1d_signals_with_an_mlp_in_the_exact_mode():
    data = nd.data.MNIST1D(num_samples=400, n_train=60, batch_size=30, channels=False)
    run = nd.fit(
        "dataset.mtt",
        student=nd.models.MLP(40, [16], 10),
        data=data,
        max_epochs=1,
        ipc=1,
        eval_epochs=2,
        augment=False,
        gradient="exact_constant_memory",
        **TINY_TRAJECTORY,
    )
    assert run.status == "finished" and run.module.images.shape == (10, 40)
    assert run.log.last("dd/images")["png"]  # 1-D signals are drawn as strips
