"""``nbdistill fit --config file.yaml``: any registered method through Lightning's ``LightningCLI``.

The config is a LightningCLI config (``model``, ``data``, ``trainer``, ``seed_everything``) with two
conveniences: ``method: kd.hinton`` names the model by its registered name (its ``model`` keys are
then the method's init arguments), and ``runs_root`` sets where the run folder goes. Every run gets
the same run folder, callbacks and checks as :func:`nbdistill.fit`; ``--trainer.devices`` and
``--trainer.strategy ddp`` scale it out through Lightning itself.
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from pytorch_lightning.cli import LightningCLI

from .callbacks import RunControl
from .errors import ConfigError
from .fit import QUIET_WARNINGS, _quiet_lightning, check_data
from .logger import RunLogger
from .module import DistillModule
from .registry import get_method


def expand_config(config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Turn ``method: <name>`` into ``model.class_path``; returns the config and the runs root."""
    config = dict(config)
    runs_root = config.pop("runs_root", None)
    method = config.pop("method", None)
    if method is not None:
        spec = get_method(method)
        model = dict(config.get("model") or {})
        if "class_path" in model:
            raise ConfigError("give either 'method' or 'model.class_path', not both")
        cls = spec.module_class
        config["model"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": model}
    return config, runs_root


class NbDistillCLI(LightningCLI):
    runs_root: str | None = None

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """The configured Trainer, with the run logger and nbdistill's callbacks added to the user's."""
        configured = self.config_init[self.subcommand]["trainer"]
        user_callbacks = configured.get("callbacks") or []
        kwargs["callbacks"] = list(user_callbacks if isinstance(user_callbacks, list) else [user_callbacks]) + [
            RunControl()
        ]
        other = configured.get("logger")
        other = [] if other in (None, True, False) else (other if isinstance(other, list) else [other])
        kwargs["logger"] = [RunLogger(root=self.runs_root, method=getattr(self.model, "method_name", None)), *other]
        kwargs["enable_checkpointing"] = False
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        model = self.model
        if not isinstance(model, DistillModule):
            raise ConfigError(f"the model must be an nbdistill method, got {type(model).__name__}")
        spec = get_method(model.method_name)
        spec.check_hparams({h.name: model.hparams[h.name] for h in spec.hparams if h.name in model.hparams})
        check_data(model, self.datamodule)


def run_cli(argv: list[str]) -> NbDistillCLI:
    """Parse ``argv`` (``--config file.yaml`` and LightningCLI overrides) and train."""
    _quiet_lightning()
    args = list(argv)
    runs_root = None
    if "--config" in args:
        i = args.index("--config")
        path = Path(args[i + 1])
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        expanded, runs_root = expand_config(raw)
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump(expanded, tmp)
        tmp.close()
        args[i + 1] = tmp.name
    NbDistillCLI.runs_root = runs_root
    argv0, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads ``args``, not the process's argv
    try:
        with warnings.catch_warnings():
            for pattern in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            return _make_cli(args)
    finally:
        sys.argv = argv0


def _make_cli(args: list[str]) -> NbDistillCLI:
    return NbDistillCLI(
        DistillModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=["fit", *args],
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
