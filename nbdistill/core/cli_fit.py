"""``nbdistill fit --config file.yaml``: any registered method through Lightning's ``LightningCLI``.

The config is a LightningCLI config (``model``, ``data``, ``trainer``, ``seed_everything``) with two
conveniences: ``method: kd.hinton`` names the model by its registered name (its ``model`` keys are
then the method's init arguments), and ``runs_root`` sets where the run folder goes. Every run gets
the same run folder, callbacks and checks as :func:`nbdistill.fit`; ``--trainer.devices`` and
``--trainer.strategy ddp`` scale it out through Lightning itself.

The config is checked before LightningCLI sees it (:mod:`.cli_checks`), so a mistyped or ill-typed
key gets the Python API's one-line message; ``verbose=True`` lets the parser speak instead (its full
message and usage). ``nbdistill resume RUN_ID`` (:func:`resume_cli`) continues a run in its own
folder from the ``config.yaml`` and ``checkpoints/last.ckpt`` kept there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from pytorch_lightning.cli import LightningCLI

from .callbacks import RunControl
from .cli_checks import check_config, summarize_parser_error
from .errors import ConfigError, RunFolderError, TrainingFailed
from .fit import QUIET_WARNINGS, _quiet_lightning, check_data, check_max_epochs
from .logger import RunLogger
from .module import DistillModule
from .registry import get_method
from .run import Run, open_run
from .runfolder import RunFolder

#: The LightningCLI config a run started by ``nbdistill fit`` keeps in its folder.
CONFIG_FILE = "config.yaml"


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
    #: continue this run folder (``nbdistill resume``) instead of making a new one
    run_id: str | None = None
    #: the run logger of the last Trainer made: where the run folder is, even if training fails
    run_logger: RunLogger | None = None

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """The configured Trainer, with the run logger and nbdistill's callbacks added to the user's."""
        configured = self.config_init[self.subcommand]["trainer"]
        user_callbacks = configured.get("callbacks") or []
        kwargs["callbacks"] = list(user_callbacks if isinstance(user_callbacks, list) else [user_callbacks]) + [RunControl()]
        other = configured.get("logger")
        other = [] if other in (None, True, False) else (other if isinstance(other, list) else [other])
        logger = RunLogger(
            root=self.runs_root,
            run_id=self.run_id,
            method=getattr(self.model, "method_name", None),
            resume=self.run_id is not None,
        )
        type(self).run_logger = logger
        kwargs["logger"] = [logger, *other]
        kwargs["enable_checkpointing"] = False
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        model = self.model
        if not isinstance(model, DistillModule):
            raise ConfigError(f"the model must be an nbdistill method, got {type(model).__name__}")
        spec = get_method(model.method_name)
        spec.check_hparams({h.name: model.hparams[h.name] for h in spec.hparams if h.name in model.hparams})
        if self.trainer.max_steps is None or self.trainer.max_steps < 0:  # a step budget may bound the epochs
            check_max_epochs(self.trainer.max_epochs)
        check_data(model, self.datamodule)


def _config_index(args: list[str]) -> tuple[int, int] | None:
    """Where ``--config PATH`` (or ``--config=PATH``) is in ``args``: (index of the token, index of the path)."""
    for i, token in enumerate(args):
        if token == "--config" and i + 1 < len(args):
            return i, i + 1
        if token.startswith("--config="):
            return i, i
    return None


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    return raw


def run_cli(
    argv: list[str], *, verbose: bool = False, runs_root: str | Path | None = None, run_id: str | None = None
) -> NbDistillCLI:
    """Parse ``argv`` (``--config file.yaml`` and LightningCLI overrides), check it, and train.

    Raises :class:`ConfigError` for a bad config (before training) and :class:`TrainingFailed`
    (``.run`` the run folder, marked ``failed``) when training fails. ``verbose`` lets
    jsonargparse report parse errors itself (full message and usage, then ``SystemExit``).
    ``runs_root``/``run_id`` continue an existing run folder (``nbdistill resume``).
    """
    _quiet_lightning()
    args = list(argv)
    wants_help = any(a in ("-h", "--help") or a.startswith("--print_config") for a in args)
    config: dict[str, Any] = {}
    where = _config_index(args)
    if where is not None:
        i, j = where
        path = Path(args[j].split("=", 1)[1] if i == j else args[j])
        config, root = expand_config(_read_config(path))
        runs_root = runs_root if runs_root is not None else root
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
            yaml.safe_dump(config, tmp)
        expanded = Path(tmp.name)
        args[i : j + 1] = ["--config", tmp.name]
    else:
        expanded = None
    if not verbose and not wants_help:
        check_config(config, args)
    cli_class = type("NbDistillCLI", (NbDistillCLI,), {"runs_root": runs_root, "run_id": run_id, "run_logger": None})
    argv0, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads ``args``, not the process's argv
    try:
        with warnings.catch_warnings():
            for pattern in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            return _make_cli(cli_class, args, exit_on_error=verbose or wants_help)
    except argparse.ArgumentError as exc:
        raise ConfigError(summarize_parser_error(str(exc))) from exc
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 (any failure of a run is reported as the run's failure)
        logger = cli_class.run_logger
        folder = logger.folder if logger is not None else None
        run = Run(folder) if folder is not None and RunFolder(folder).has_info else None
        raise TrainingFailed(f"{type(exc).__name__}: {exc}", run) from exc
    finally:
        sys.argv = argv0
        if expanded is not None:
            expanded.unlink(missing_ok=True)


def _make_cli(cli_class: type[NbDistillCLI], args: list[str], exit_on_error: bool = True) -> NbDistillCLI:
    return cli_class(
        DistillModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=["fit", *args],
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs={"exit_on_error": exit_on_error, "fit": {"exit_on_error": exit_on_error}},
    )


def finished_run(cli: NbDistillCLI) -> Run | None:
    """The run folder ``cli`` trained (``None`` on ranks other than 0 or without a run logger)."""
    from pytorch_lightning.utilities import rank_zero_only

    logger = type(cli).run_logger
    if rank_zero_only.rank != 0 or logger is None or not logger.run_folder.has_info:
        return None
    return Run(logger.folder)


def summary(run: Run) -> str:
    """A few lines for the terminal: run id, folder, status (and why, if it failed), final metrics."""
    lines = [f"run {run.id}: {run.status}", f"  folder  {run.path.resolve()}"]
    if run.error:
        lines.append(f"  reason  {run.error}")
    metrics = run.metrics
    shown = [n for n in sorted(metrics) if n.startswith("test/")] + [n for n in sorted(metrics) if n.startswith("val/")]
    if not shown:
        shown = sorted(metrics)
    if shown:
        width = max(len(n) for n in shown)
        lines.append("  final metrics:")
        for name in shown:
            value = metrics[name]
            lines.append(f"    {name.ljust(width)}  {value:.4f}" if value is not None else f"    {name.ljust(width)}  -")
    return "\n".join(lines)


def _target_epochs(config: dict[str, Any]) -> int | None:
    trainer = config.get("trainer") if isinstance(config.get("trainer"), dict) else {}
    value = trainer.get("max_epochs")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resume_cli(
    run_id: str,
    *,
    root: str | None = None,
    max_epochs: int | None = None,
    extra: list[str] = (),
    verbose: bool = False,
) -> NbDistillCLI:
    """Continue run ``run_id`` (an id under the runs root, or a folder) in its own folder.

    The run is rebuilt from the ``config.yaml`` ``nbdistill fit`` saved there and trained on from
    ``checkpoints/last.ckpt`` to its own ``max_epochs`` (or ``max_epochs`` when given). Raises
    :class:`ConfigError` (the run is left as it was) when it cannot be resumed.
    """
    run = open_run(run_id, root)
    if max_epochs is not None and (isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1):
        raise ConfigError(f"--max_epochs must be a whole number of epochs, at least 1; got {max_epochs!r}")
    if run.status == "running":  # a live writer (a run whose writer is gone is ``lost``)
        raise ConfigError(
            f"run {run.id} is still being trained (pid {run.info.get('pid')} on {run.info.get('host')}); "
            f"stop it first (touch {run.run_folder.stop_file}) and resume it once it is stopped"
        )
    config_path = run.path / CONFIG_FILE
    if not config_path.exists():
        raise ConfigError(
            f"run {run.id} was not started by `nbdistill fit` (no {CONFIG_FILE} in {run.path}); "
            f"resume it from Python: nd.resume({run.id!r}, student=..., data=...)"
        )
    if run.checkpoint is None:
        raise ConfigError(f"run {run.id} has no checkpoint to resume from ({run.run_folder.last_checkpoint} is missing)")
    own = _target_epochs(_read_config(config_path))
    try:
        done = run.epochs_done()
    except RunFolderError as exc:
        raise ConfigError(f"run {run.id} cannot be resumed: {exc}") from None
    if run.status == "finished" and max_epochs is None:
        trained = done if done is not None else own
        if trained:
            raise ConfigError(
                f"run {run.id} already finished its {trained} epochs; give --max_epochs above {trained} to train it further"
            )
        raise ConfigError(f"run {run.id} already finished; give --max_epochs to train it further")
    target = max_epochs if max_epochs is not None else own
    if done is not None and target is not None and done >= target:
        raise ConfigError(
            f"run {run.id} has already trained {done} epochs, which reaches max_epochs {target}; "
            f"give --max_epochs above {done} to train it further"
        )
    args = ["--config", str(config_path), *extra, "--ckpt_path", str(run.checkpoint)]
    if max_epochs is not None:
        args += ["--trainer.max_epochs", str(max_epochs)]
    run.run_folder.clear_stop()
    return run_cli(args, verbose=verbose, runs_root=run.path.parent, run_id=run.path.name)
