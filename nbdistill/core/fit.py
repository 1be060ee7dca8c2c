"""``fit``: train any registered method headless and return its :class:`~nbdistill.core.run.Run`."""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pytorch_lightning as pl
from torch import nn

from .callbacks import RunControl
from .errors import ConfigError, TrainingFailed
from .logger import Observer, RunLogger
from .registry import get_method
from .run import Run, open_run

#: What Lightning prints that says nothing to a tutorial's reader.
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*GPU available but not used.*",
    ".*TPU available but not used.*",
    ".*LeafSpec.*",
    ".*The number of training batches.*",
    ".*You're resuming from a checkpoint that ended before the epoch ended.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*module\\(s\\) in eval mode at the start of training.*",
    ".*`weights_only` was not set.*",
)


def _quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU lines, tips) hides what a learner should read."""
    import logging

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build(method: str, student: nn.Module, teacher: nn.Module | None = None, teachers: Sequence[nn.Module] = (), **hparams: Any):
    """Build the LightningModule of ``method`` after checking its hyper-parameters."""
    spec = get_method(method)
    values = spec.check_hparams(hparams)
    if spec.needs_teacher and teacher is None and not teachers:
        raise ConfigError(f"{method} needs a teacher: pass teacher=... (e.g. nd.zoo.teacher('digits-mlp'))")
    kwargs: dict[str, Any] = {"student": student, **values}
    if teachers:
        kwargs["teachers"] = list(teachers)
    if teacher is not None:
        kwargs["teacher"] = teacher
    return spec.module_class(**kwargs)


def check_data(module, data: pl.LightningDataModule) -> None:
    """Raise :class:`ConfigError` if ``data`` cannot feed ``module`` (checked on one batch)."""
    data.setup("fit")
    try:
        batch = next(iter(data.train_dataloader()))
    except StopIteration:
        raise ConfigError("the training data is empty") from None
    module.check_compatibility(batch, getattr(data, "num_classes", None))
    whole = getattr(module, "check_data", None)
    if callable(whole):  # a method that reads the whole data set (dataset distillation) checks it here
        whole(data)


def use_teacher_cache(module, data: pl.LightningDataModule, enabled: bool = True) -> bool:
    """Turn the teacher-output cache on where it is exact: a method that allows it, fixed training inputs."""
    on = (
        enabled
        and getattr(module, "supports_teacher_cache", False)
        and len(getattr(module, "teachers", ())) > 0
        and hasattr(data, "with_index")
        and not getattr(data, "augments", True)
    )
    if hasattr(data, "with_index"):
        data.with_index(on)
    if on:
        module.cache_teacher_outputs(data.dataset("train").tensors[0])
    return on


def make_trainer(
    logger: RunLogger,
    max_epochs: int,
    control: RunControl,
    progress_bar: bool = False,
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",
    log_every_n_steps: int = 5,
    **trainer_kwargs: Any,
) -> pl.Trainer:
    callbacks: list[pl.Callback] = [control]
    return pl.Trainer(
        max_epochs=max_epochs,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        num_sanity_val_steps=0,
        log_every_n_steps=log_every_n_steps,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        **trainer_kwargs,
    )


def fit(
    method: str,
    *,
    student: nn.Module,
    data: pl.LightningDataModule,
    teacher: nn.Module | None = None,
    teachers: Sequence[nn.Module] = (),
    max_epochs: int = 20,
    seed: int = 0,
    runs_root: str | os.PathLike | None = None,
    run_id: str | None = None,
    resume: Run | str | os.PathLike | None = None,
    observers: Sequence[Observer] = (),
    stop_event: threading.Event | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    progress_bar: bool = False,
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    raise_on_failure: bool = True,
    cache_teacher: bool = True,
    trainer_kwargs: dict[str, Any] | None = None,
    **hparams: Any,
) -> Run:
    """Train ``method`` (e.g. ``"kd.hinton"``) and return its run folder as a :class:`Run`.

    Everything is checked before training: the method name, its hyper-parameters (names, types,
    ranges), and that teacher, student and data fit together. A run that fails while training is
    marked ``failed`` with the reason and :class:`TrainingFailed` is raised (``.run`` holds it).
    ``cache_teacher`` computes the teacher's outputs on the training set once, when the method
    allows it and the data is not augmented, so distilling costs about what training alone costs.
    ``resume`` continues a stopped run from its checkpoint, in the same folder; pass the same
    models, data and seed. ``stop_event`` (a ``threading.Event``) stops the run after the current
    batch; the run is then ``stopped`` with a checkpoint.
    """
    _quiet_lightning()
    pl.seed_everything(seed, verbose=False)
    module = build(method, student, teacher, teachers, **hparams)
    check_data(module, data)
    use_teacher_cache(module, data, cache_teacher)

    ckpt_path = None
    if resume is not None:
        previous = resume if isinstance(resume, Run) else open_run(resume)
        if previous.method != method:
            raise ConfigError(f"cannot resume a {previous.method} run as {method}")
        if previous.checkpoint is None:
            raise ConfigError(f"run {previous.id} has no checkpoint to resume from")
        ckpt_path = str(previous.checkpoint)
        runs_root, run_id = previous.path.parent, previous.path.name
        (previous.path / "stop-request").unlink(missing_ok=True)

    logger = RunLogger(root=runs_root, run_id=run_id, method=method, observers=observers)
    trainer = make_trainer(
        logger, max_epochs, RunControl(stop_event, progress), progress_bar, accelerator, devices, strategy, **(trainer_kwargs or {})
    )
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except Exception as exc:
            run = Run(logger.folder) if (logger.folder / "run.json").exists() else None
            if raise_on_failure:
                raise TrainingFailed(f"{method} failed: {type(exc).__name__}: {exc}", run) from exc
            return run
    if trainer.global_rank != 0:
        return None
    run = Run(logger.folder)
    run.module = module
    return run


def resume(run: Run | str | os.PathLike, **kwargs: Any) -> Run:
    """Continue a stopped run: ``fit`` with ``resume=run`` and the run's own method and hyper-parameters."""
    previous = run if isinstance(run, Run) else open_run(run)
    spec = get_method(previous.method)
    declared = {h.name for h in spec.hparams}
    hparams = {k: v for k, v in previous.hparams.items() if k in declared}
    hparams.update({k: kwargs.pop(k) for k in list(kwargs) if k in declared})
    return fit(previous.method, resume=previous, **hparams, **kwargs)
