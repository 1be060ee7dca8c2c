"""``DistillModule``: the thin LightningModule every distillation method derives from.

It holds a trainable ``student`` and zero or more frozen ``teachers`` (``requires_grad=False``,
kept in eval mode even while the module trains) and asks each method for one thing: its named loss
terms of a batch, :meth:`DistillModule.loss_terms`, the total to minimise under ``"loss"``. Around
that it gives every method, each piece in a module of its own:

- hyper-parameters declared once, as ``HParam`` class attributes (:mod:`.hparams`);
- the evaluation hook of the family, ``evaluation_class`` (:mod:`.evaluation`), called at every
  validation epoch and on the test split when fitting ends;
- the teacher-output cache (:mod:`.teacher_cache`) and the fast path for small models
  (:mod:`.fastpath`), both invisible to a method that does not fit their conditions;
- data checks before the first step: :meth:`check_compatibility` on a training batch (the
  evaluation's, by default) and :meth:`check_data` on the whole data module;
- the optimiser (Adam over every trainable parameter) and the run writer (:meth:`_run_writer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from .batches import as_pair, batch_size
from .evaluation import ClassificationGap, Evaluation
from .fastpath import FastPath, adam, precompute_signatures, steps_itself
from .hparams import HParam, install_init
from .logger import RunLogger
from .teacher_cache import TeacherCache


def freeze(module: nn.Module) -> nn.Module:
    """``module`` in eval mode with every parameter's ``requires_grad`` off."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _cli_class_path() -> dict[str, str]:
    """``{"_class_path": ...}`` while LightningCLI instantiates the module, else ``{}``: the CLI finds
    the class again from a checkpoint's hyper-parameters by it (``--ckpt_path``, ``nbdistill resume``)."""
    try:
        from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # another Lightning version
        return {}
    given = _given_hyperparameters.get() or {}
    return {"_class_path": given["_class_path"]} if "_class_path" in given else {}


#: Attributes set on every step that hold plain values (see ``DistillModule.__setattr__``).
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "_cached_batch", "last_terms"})


class DistillModule(TeacherCache, FastPath, pl.LightningModule):
    """Base of every method: frozen teacher(s), trainable student, ``loss_terms(batch) -> dict``.

    Args:
        student: the network being trained.
        teacher: the frozen teacher (or ``teachers`` for several).
        lr, weight_decay: Adam settings for the student's parameters (and any the method adds).
    """

    method_name: str = ""
    lr = HParam(float, 1e-2, 1e-5, 1.0, log=True, help="Adam learning rate")
    weight_decay = HParam(float, 0.0, 0.0, 0.1, help="Adam weight decay")
    #: What "the gap" is in this family (see :mod:`.evaluation`).
    evaluation_class: type[Evaluation] = ClassificationGap

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            raise TypeError(
                f"{cls.__name__} defines __init__: declare its hyper-parameters as HParam class attributes "
                "and build its own parts in build_parts() (see nbdistill.core.hparams)"
            )
        install_init(cls, DistillModule._init_declared)

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets ``_current_fx_name`` around every hook it calls (35 times a training step
        # here) and this class sets two attributes a step: plain values, never parameters, buffers
        # or submodules, so they skip nn.Module's registration checks (1.4 us -> 0.15 us each)
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _init_declared(self, student: nn.Module, teacher: nn.Module | None, teachers: Sequence[nn.Module], hparams: dict) -> None:
        pl.LightningModule.__init__(self)
        self.student = student
        all_teachers = ([teacher] if teacher is not None else []) + list(teachers or ())
        self.teachers = nn.ModuleList([freeze(t) for t in all_teachers])
        for name, value in hparams.items():
            setattr(self, name, value)
        self.save_hyperparameters({**_cli_class_path(), **hparams})
        self.last_terms: dict[str, torch.Tensor] = {}
        self.evaluation = self.evaluation_class()
        self.build_parts()

    def build_parts(self) -> None:
        """Build what the method adds to the student from its hyper-parameters (heads, a distilled set)."""

    # -- teachers -------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self.teachers[0] if len(self.teachers) else None

    def train(self, mode: bool = True) -> DistillModule:
        super().train(mode)
        for t in self.teachers:
            t.eval()
        return self

    def student_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    # -- the one hook each method writes ----------------------------------------------------------
    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        """Named loss terms of one batch; the total to minimise under ``"loss"``."""
        raise NotImplementedError

    @steps_itself
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        if "loss" not in terms:
            raise KeyError(f"{type(self).__name__}.loss_terms must return the total under 'loss'")
        self.last_terms = terms
        if self._logs_this_step():
            self._log_terms(terms, batch_size(batch))
        if not self.automatic_optimization:
            self._step(terms["loss"])
        return terms["loss"]

    def _scalar_term(self, name: str, value: Any) -> torch.Tensor:
        """``value`` as a 0-d tensor, or a ValueError naming the term that is not a scalar."""
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"{type(self).__name__}.loss_terms returned {name!r} of shape {tuple(value.shape)}: "
                    "every term must be a scalar (reduce it, e.g. with .mean())"
                )
            return value.detach().reshape(())
        try:
            return torch.tensor(float(value))
        except (TypeError, ValueError):
            raise ValueError(
                f"{type(self).__name__}.loss_terms returned {name!r} = {value!r}: every term must be a number or a scalar tensor"
            ) from None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        clipping = self._trainer is not None and bool(self.trainer.gradient_clip_val)
        return adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=not clipping)

    # -- input checks, before any training step ---------------------------------------------------
    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the problem if the models cannot take a training batch."""
        self.evaluation.check_batch(self, as_pair(batch), num_classes)

    def check_data(self, data: pl.LightningDataModule) -> None:
        """Raise :class:`ConfigError` if the whole data set is unusable for this method (after the
        generic split checks and :meth:`check_compatibility`); nothing by default."""

    # -- evaluation: the family's hook, written to the run folder ----------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluation.collect(self, batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluation.collect(self, batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.evaluation.discard("val")
        else:
            self._log_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def _log_evaluation(self, stage: str) -> dict[str, Any]:
        """Compute the evaluation of ``stage`` and write it: scalars as ``<stage>/<name>``, then the
        evaluation's richer events."""
        metrics = self.evaluation.compute(self, stage)
        if not metrics:
            return metrics
        scalars = self.evaluation.scalars(self, metrics)
        if not self._log_scalars(stage, scalars):
            for name, value in scalars.items():
                self.log(f"{stage}/{name}", value, sync_dist=False)
        writer = self._run_writer()
        if writer is not None:
            self.evaluation.write_events(self, writer, stage, metrics)
        return metrics

    def on_fit_end(self) -> None:
        """Evaluate on the test split once training ends (finished or stopped) and write ``test/*``."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "test_dataloader"):
            return
        self.write_test_evaluation(self.evaluate("test", self.evaluation.test_batches(self, dm)))

    def evaluate(self, stage: str, batches) -> dict[str, Any]:
        """The evaluation's metrics over ``batches``, computed in eval mode without gradients."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            for batch in batches:
                self.evaluation.collect(self, batch, stage)
        self.train(was_training)
        return self.evaluation.compute(self, stage)

    def write_test_evaluation(self, metrics: dict[str, Any]) -> None:
        writer = self._run_writer()
        if writer is None or not metrics:
            return
        for name, value in self.evaluation.scalars(self, metrics).items():
            writer.scalar(f"test/{name}", value, step=self.global_step)
        self.evaluation.write_events(self, writer, "test", metrics)
        writer.flush()

    def _run_writer(self):
        """The run folder's event writer, when a :class:`RunLogger` is attached (``nd.fit`` attaches one)."""
        if self._trainer is None:
            return None
        for logger in self.trainer.loggers:
            if isinstance(logger, RunLogger):
                return logger.experiment
        return None


install_init(DistillModule, DistillModule._init_declared)
precompute_signatures(DistillModule.training_step, DistillModule.validation_step, DistillModule.test_step)
