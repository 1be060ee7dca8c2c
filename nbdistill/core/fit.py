"""``fit``: train any registered method headless and return its :class:`~nbdistill.core.run.Run`."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
from torch import nn

from .batches import as_pair, read_dict_batches, stop_reading_dict_batches
from .callbacks import RunControl
from .datachecks import check_splits
from .errors import ConfigError
from .interrupts import StopOnSignals
from .logger import RunLogger
from .options import RunOptions, TrainerOptions, group_arguments
from .registry import adapt_data, get_method
from .resuming import after_failure, check_new_run_id, check_resumable, open_run_folder
from .run import Run, open_run
from .runfolder import check_runs_root

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


def check_model(model: Any, who: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` (the ``who``: student, teacher) is a ``torch.nn.Module``."""
    if isinstance(model, nn.Module):
        return
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise ConfigError(f"the {who} is the class {model.__name__}, not a network: create one, e.g. {model.__name__}(...)")
    if callable(model) and hasattr(model, "__name__"):
        what = f"the function {model.__name__}"
    else:
        shown = repr(model)
        what = f"{type(model).__name__} {shown[:40] + ('...' if len(shown) > 40 else '')}"
    fix = (
        "e.g. student=nd.models.MLP(64, [32], 10)"
        if who == "student"
        else "wrap a function in one: class Teacher(torch.nn.Module): def forward(self, x): return f(x)"
    )
    raise ConfigError(f"the {who} must be a torch.nn.Module (a network), got {what}; {fix}")


def check_max_epochs(max_epochs: Any) -> None:
    """Raise :class:`ConfigError` unless ``max_epochs`` is a whole number of at least 1 (Lightning
    reads 0 as "no training" and -1 as "train forever"; a string fails deep inside it)."""
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, numbers.Integral):
        hint = (
            f"max_epochs={int(max_epochs)}"
            if isinstance(max_epochs, str) and max_epochs.strip().isdigit()
            else "e.g. max_epochs=20"
        )
        raise ConfigError(f"max_epochs must be a whole number, got {type(max_epochs).__name__} {max_epochs!r}; pass {hint}")
    if max_epochs < 1:
        raise ConfigError(
            f"max_epochs must be at least 1, got {max_epochs}: it is how many passes over the training data to make "
            "(0 would train nothing and -1 forever); pass e.g. max_epochs=20"
        )


def check_checkpoint_every(epochs: Any, seconds: Any) -> None:
    """Raise :class:`ConfigError` unless each periodic-checkpoint trigger is ``None`` (off) or positive."""
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1):
        raise ConfigError(f"checkpoint_every_epochs must be a whole number of at least 1, or None (off); got {epochs!r}")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not seconds >= 0):
        raise ConfigError(f"checkpoint_every_s must be a number of seconds >= 0 (0: every epoch), or None (off); got {seconds!r}")


def build(method: str, student: nn.Module, teacher: nn.Module | None = None, teachers: Sequence[nn.Module] = (), **hparams: Any):
    """Build the LightningModule of ``method`` after checking its hyper-parameters and that the
    student and teacher(s) are networks (``torch.nn.Module``)."""
    spec = get_method(method)
    values = spec.check_hparams(hparams)
    check_model(student, "student")
    if teacher is not None:
        check_model(teacher, "teacher")
    if not isinstance(teachers, (list, tuple, nn.ModuleList)):
        raise ConfigError(f"teachers must be a list of networks, got {type(teachers).__name__}; for one, pass teacher=...")
    for i, t in enumerate(teachers):
        check_model(t, f"teacher {i}")
    if spec.needs_teacher and teacher is None and not teachers:
        raise ConfigError(f"{method} needs a teacher: pass teacher=... (e.g. nd.zoo.teacher('digits-mlp'))")
    kwargs: dict[str, Any] = {"student": student, **values}
    if teachers:
        kwargs["teachers"] = list(teachers)
    if teacher is not None:
        kwargs["teacher"] = teacher
    return spec.module_class(**kwargs)


def check_data(module, data: pl.LightningDataModule) -> None:
    """Raise :class:`ConfigError` if ``data`` cannot feed ``module``: its splits first (a test split,
    finite inputs, labels that are class indices present in training; see
    :func:`nbdistill.core.datachecks.check_splits`), then one training batch through the models."""

    if not isinstance(data, pl.LightningDataModule):
        raise ConfigError(
            f"the data must be a LightningDataModule here, got {type(data).__name__}; pass it through nbdistill.data.as_datamodule"
        )
    data.setup("fit")
    try:
        batch = next(iter(data.train_dataloader()))
    except StopIteration:
        raise ConfigError("the training data is empty") from None
    try:  # the usual LightningDataModule builds its test set only in setup("test")
        data.setup("test")
    except Exception as exc:  # noqa: BLE001 (a user's setup: say which step failed)
        raise ConfigError(f"the data's setup('test') failed: {type(exc).__name__}: {exc}") from exc
    check_splits(data)
    if isinstance(batch, Mapping):  # Hugging Face style: read by key from now on (or refused, naming the keys)
        as_pair(batch)
        read_dict_batches(data)
    module.check_compatibility(as_pair(batch), getattr(data, "num_classes", None))
    module.check_data(data)  # a method that reads the whole data set (dataset distillation) checks it here


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
    data: Any,
    teacher: nn.Module | None = None,
    teachers: Sequence[nn.Module] = (),
    hparams: Mapping[str, Any] | None = None,
    trainer: TrainerOptions | Mapping[str, Any] | None = None,
    run: RunOptions | Mapping[str, Any] | None = None,
    **flat: Any,
) -> Run:
    """Train ``method`` (e.g. ``"kd.hinton"``) and return its run folder as a :class:`Run`.

    What it takes comes in three groups, given as such or flat (``max_epochs=5, temperature=2.0``),
    each flat name sorted into its group (:func:`~nbdistill.core.options.group_arguments`):

    - ``hparams``: the method's hyper-parameters (``nd.get_method(method).hparams``);
    - ``trainer``: :class:`~nbdistill.core.options.TrainerOptions` (``max_epochs``, ``accelerator``,
      ``devices``, ``strategy``, ``progress_bar``, ``cache_teacher``, ``extra`` Trainer arguments);
    - ``run``: :class:`~nbdistill.core.options.RunOptions` (``seed``, ``runs_root``, ``run_id``,
      ``resume``, ``observers``, ``stop_event``, ``progress``, ``raise_on_failure``,
      ``checkpoint_every_epochs``, ``checkpoint_every_s``).

    ``data`` is a LightningDataModule or what :func:`nbdistill.data.as_datamodule` takes: ``(X, y)``
    arrays, tensors or a DataFrame, a dict of splits, a torch ``Dataset`` or ``DataLoader``, PyG graphs.
    Everything is checked before training: the method name, its hyper-parameters (names, types,
    ranges), ``max_epochs``, that teacher and student are networks, the data's splits (a test split,
    finite inputs, integer labels within the classes) and that teacher, student and data fit
    together. A run that fails while training is marked ``failed`` with the reason and
    :class:`TrainingFailed` is raised (``.run`` holds it; ``raise_on_failure=False`` returns it).
    ``cache_teacher`` computes the teacher's outputs on the training set once, when the method
    allows it and the data is not augmented, so distilling costs about what training alone costs.
    ``resume`` continues a stopped (or ``lost``: killed) run from its checkpoint, in the same
    folder; pass the same models, data and seed (:func:`resume` does, with the run's own target).
    A resume that cannot start raises :class:`ConfigError` and leaves the run as it was. A new
    ``run_id`` must not exist yet. ``stop_event`` (a ``threading.Event``) stops the run after the
    current batch; the run is then ``stopped`` with a checkpoint. Ctrl-C (the notebook's interrupt
    button) and SIGTERM stop it the same way; the ``KeyboardInterrupt`` is raised again afterwards
    (its ``.run`` holds the stopped run) and SIGTERM then ends the process as it would have.

    While training, ``checkpoints/last.ckpt`` is saved at the end of an epoch when
    ``checkpoint_every_epochs`` epochs or ``checkpoint_every_s`` seconds have passed since the last
    one (``None`` turns a trigger off), so a killed run resumes from there. The run's folder is
    locked for this process while it trains (a second writer gets :class:`ConfigError`).
    """
    hparams, options, run_options = group_arguments(flat, hparams, trainer, run)
    check_max_epochs(options.max_epochs)
    check_checkpoint_every(run_options.checkpoint_every_epochs, run_options.checkpoint_every_s)
    data = adapt_data(data, seed=run_options.seed)
    _quiet_lightning()
    pl.seed_everything(run_options.seed, verbose=False)
    module = build(method, student, teacher, teachers, **hparams)
    check_data(module, data)
    use_teacher_cache(module, data, options.cache_teacher)
    return _train(method, module, data, options, run_options)


def _train(method: str, module, data: pl.LightningDataModule, options: TrainerOptions, run_options: RunOptions) -> Run:
    """Open the run folder (a new one, or the resumed run's), train, and leave ``run.json`` true."""
    runs_root, run_id, previous = run_options.runs_root, run_options.run_id, None
    if run_options.resume is not None:
        resume = run_options.resume
        previous = resume if isinstance(resume, Run) else open_run(resume)
        runs_root, run_id = previous.path.parent, previous.path.name
    control = RunControl(
        run_options.stop_event, run_options.progress, run_options.checkpoint_every_epochs, run_options.checkpoint_every_s
    )
    logger = RunLogger(root=runs_root, run_id=run_id, method=method, observers=run_options.observers, resume=previous is not None)
    trainer = make_trainer(
        logger,
        options.max_epochs,
        control,
        options.progress_bar,
        options.accelerator,
        options.devices,
        options.strategy,
        **dict(options.extra),
    )
    ckpt_path = str(previous.checkpoint) if previous is not None else None
    if trainer.global_rank == 0:  # other ranks (DDP's processes) find the folder rank 0 has opened
        if previous is not None:
            ckpt_path = str(check_resumable(previous, method, options.max_epochs))
        else:
            check_runs_root(runs_root)
            if run_id is not None:
                check_new_run_id(logger.root, run_id)
        open_run_folder(logger)  # the writer lock and run.json, before any training
        if previous is not None:
            previous.run_folder.clear_stop()
    failure: BaseException | None = None
    with warnings.catch_warnings(), StopOnSignals(control.stop.event):
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except BaseException as exc:  # noqa: BLE001 (every ending leaves run.json true; re-raised below)
            failure = exc
        finally:
            logger.close()
            stop_reading_dict_batches(data)
    if failure is not None:
        return after_failure(method, logger, control, previous, failure, run_options.raise_on_failure)
    if trainer.global_rank != 0:
        return None
    run = Run(logger.folder)
    run.module = module
    return run


def resume(run: Run | str | os.PathLike, **kwargs: Any) -> Run:
    """Continue a stopped or lost run in its folder: ``fit`` with ``resume=run``, the run's own method,
    hyper-parameters and target (``max_epochs`` recorded in ``run.json``; pass ``max_epochs`` to
    train further). Pass the same student, teacher(s), data and seed as the run was started with."""
    previous = run if isinstance(run, Run) else open_run(run)
    if "max_epochs" not in kwargs and previous.max_epochs is not None:
        kwargs["max_epochs"] = previous.max_epochs
    spec = get_method(previous.method)
    declared = {h.name for h in spec.hparams}
    hparams = {k: v for k, v in previous.hparams.items() if k in declared}
    hparams.update({k: kwargs.pop(k) for k in list(kwargs) if k in declared})
    return fit(previous.method, resume=previous, **hparams, **kwargs)
