"""Callbacks every nbdistill run uses: run status, NaN/inf guard, graceful stop, resume of the data order."""
from __future__ import annotations

import math
import threading
import traceback
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from .errors import NonFiniteLoss
from .logger import RunLogger


def run_logger(trainer: pl.Trainer) -> RunLogger | None:
    for logger in trainer.loggers:
        if isinstance(logger, RunLogger):
            return logger
    return None


class RunStatus(pl.Callback):
    """Keeps ``run.json`` true: ``running`` at start, then ``finished``, ``stopped`` or ``failed``.

    At the end of training (finished or stopped) it saves ``checkpoints/last.ckpt``, from which
    :func:`nbdistill.fit` resumes a stopped run.
    """

    def __init__(self) -> None:
        self.failed = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = run_logger(trainer)
        if logger is None:
            return
        method = getattr(pl_module, "method_name", None)
        if method:
            logger.set_method(method)
        self._set(logger, "running")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = run_logger(trainer)
        if logger is not None and not self.failed:
            trainer.save_checkpoint(str(logger.checkpoint_path))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.failed = True
        logger = run_logger(trainer)
        if logger is None:
            return
        if isinstance(exception, KeyboardInterrupt):
            reason = "interrupted (KeyboardInterrupt)"
        else:
            reason = f"{type(exception).__name__}: {exception}"
        self._set(logger, "failed", reason, traceback="".join(traceback.format_exception(exception))[-4000:])

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        logger = run_logger(trainer)
        if stage != "fit" or logger is None or self.failed:
            return
        stopped = any(isinstance(cb, GracefulStop) and cb.stopped for cb in trainer.callbacks)
        self._set(logger, "stopped" if stopped else "finished")

    @staticmethod
    @rank_zero_only
    def _set(logger: RunLogger, status: str, error: str | None = None, **extra: Any) -> None:
        writer = logger.experiment
        writer.set_status(status, error)
        if extra:
            writer.write_info(**extra)


class NonFiniteGuard(pl.Callback):
    """Raises :class:`NonFiniteLoss` (so the run is marked ``failed``) when the loss is NaN or inf.

    Checked before the backward pass, so the weights never receive a non-finite update.
    """

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            terms = getattr(pl_module, "last_terms", {}) or {}
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            raise NonFiniteLoss(
                f"loss became {value} at step {trainer.global_step} (epoch {trainer.current_epoch})"
                + (f"; terms: {detail}" if detail else "")
            )


class GracefulStop(pl.Callback):
    """Stops training after the current batch when ``event`` is set or a ``stop-request`` file appears.

    The run is then marked ``stopped`` and ``checkpoints/last.ckpt`` is written (see :class:`RunStatus`).
    """

    def __init__(self, event: threading.Event | None = None):
        self.event = event or threading.Event()
        self.stopped = False

    def request(self) -> None:
        self.event.set()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        logger = run_logger(trainer)
        asked = self.event.is_set() or (logger is not None and logger.experiment.stop_requested)
        asked = trainer.strategy.reduce_boolean_decision(bool(asked), all=False)
        if asked:
            self.stopped = True
            trainer.should_stop = True

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Record a mid-epoch stop as an unfinished epoch, so resuming finishes that epoch's batches.

        Lightning counts the epoch in which ``should_stop`` was set as completed; the checkpoint is
        rewritten to say the epoch was started but not completed, which Lightning resumes mid-epoch.
        """
        if not self.stopped:
            return
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        done_in_epoch = loops.get("epoch_loop.batch_progress", {}).get("current", {}).get("completed", 0)
        if not 0 < done_in_epoch < trainer.num_training_batches:
            return
        progress = loops["epoch_progress"]
        for counter in ("total", "current"):
            progress[counter]["completed"] = progress[counter]["processed"] = progress[counter]["ready"] - 1
        checkpoint["epoch"] = progress["current"]["ready"] - 1


class ResumeDataOrder(pl.Callback):
    """Makes a resumed run see exactly the batches an uninterrupted run would have seen.

    A run stopped mid-epoch restarts that epoch's loop at the batch it reached; samplers that
    support it (:class:`nbdistill.data.sampling.EpochSeededSampler`) are told to skip the batches
    already trained on, so data order and results match an uninterrupted run with the same seed.
    """

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        try:
            progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"]
        except (KeyError, TypeError):
            return
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "skip_batches_once"):
            datamodule.skip_batches_once(int(progress))


class Progress(pl.Callback):
    """Calls ``report(done, total, metrics)`` after each training batch (the panel's progress bar)."""

    def __init__(self, report: Callable[[int, int, dict], None]):
        self.report = report

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        total = trainer.estimated_stepping_batches
        total = int(total) if total is not None and math.isfinite(total) else 0
        self.report(trainer.global_step, total, {})
