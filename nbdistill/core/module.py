"""``DistillModule``: the LightningModule every distillation method derives from.

It holds a trainable ``student`` and zero or more frozen ``teachers`` (``requires_grad=False``,
kept in eval mode even while the module trains), sums nothing itself (each method returns its
named loss terms from :meth:`DistillModule.loss_terms`, the total under ``"loss"``), logs every
term, and measures the teacher–student gap each validation epoch and on the test split at the end.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from .errors import ConfigError
from .gap import classification_gap
from .logger import RunLogger


def adam(params: list[torch.Tensor], lr: float, weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Adam:
    """Adam, fused into one kernel where torch has one for the parameters' device (CPU, CUDA).

    The same update as ``torch.optim.Adam``'s default implementation up to rounding; on a small
    student it takes a third of the time (~50 us instead of ~130 us a step on one CPU thread for
    a 64-32-10 MLP), which matters when a step is a few hundred microseconds. ``fused=False``
    where it cannot serve: Lightning's mixed precision refuses to clip a fused optimiser's gradients.
    """
    devices = {p.device.type for p in params}
    fused = fused and bool(params) and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


#: Where a batch that is a dict (Hugging Face style) holds its inputs and its labels: the first key found.
INPUT_KEYS = ("input", "inputs", "x", "pixel_values", "input_values", "features")
LABEL_KEYS = ("label", "labels", "y", "target", "targets")


def dict_key(batch: Mapping, keys: tuple[str, ...], what: str) -> Any:
    """The first of ``keys`` in ``batch``, or a :class:`ConfigError` listing the keys it has."""
    for key in keys:
        if key in batch:
            return key
    raise ConfigError(
        f"the data's batches are dicts with keys {sorted(map(str, batch))}, and none of them holds the {what}: "
        f"nbdistill reads the inputs under one of {list(INPUT_KEYS)} and the labels under one of {list(LABEL_KEYS)}; "
        "rename the keys (e.g. a Hugging Face dataset's .rename_column('img', 'pixel_values')) or make each "
        "batch an (inputs, labels) pair"
    )


def as_pair(batch: Any) -> Any:
    """A dict batch as ``[inputs, labels]`` (read by key, see :data:`INPUT_KEYS`, :data:`LABEL_KEYS`);
    any other batch unchanged."""
    if isinstance(batch, Mapping):
        return [batch[dict_key(batch, INPUT_KEYS, "inputs")], batch[dict_key(batch, LABEL_KEYS, "labels")]]
    return batch


def read_dict_batches(data: pl.LightningDataModule) -> None:
    """Make ``data`` hand its dict batches to the model as ``[inputs, labels]`` (:func:`as_pair`), through
    its ``on_before_batch_transfer`` hook: set on this data module only, so data with (x, y) batches
    pays nothing, and the model overrides no hook (Lightning warns when both could)."""
    if getattr(data, "_reads_dict_batches", False):
        return
    own = data.on_before_batch_transfer
    data._own_batch_hook = vars(data).get("on_before_batch_transfer")  # an instance's own, if it set one

    def to_pair(batch: Any, dataloader_idx: int) -> Any:
        return as_pair(own(batch, dataloader_idx))

    data.on_before_batch_transfer = to_pair
    data._reads_dict_batches = True


def stop_reading_dict_batches(data: pl.LightningDataModule) -> None:
    """Undo :func:`read_dict_batches` once training is over: the user's data module is left as given."""
    if not vars(data).pop("_reads_dict_batches", False):
        return
    own = vars(data).pop("_own_batch_hook", None)
    if own is None:
        del data.on_before_batch_transfer  # the class's hook shows through again
    else:
        data.on_before_batch_transfer = own


def freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class DistillModule(pl.LightningModule):
    """Base of every method: frozen teacher(s), trainable student, ``loss_terms(batch) -> dict``.

    Args:
        student: the network being trained.
        teacher: the frozen teacher (or ``teachers`` for several).
        lr, weight_decay: Adam settings for the student's parameters (and any the method adds).
    """

    method_name: str = ""

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets ``_current_fx_name`` around every hook it calls (35 times a training step
        # here) and this class sets two attributes a step: plain values, never parameters, buffers
        # or submodules, so they skip nn.Module's registration checks (1.4 us -> 0.15 us each)
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        teachers: Sequence[nn.Module] = (),
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        self.student = student
        all_teachers = ([teacher] if teacher is not None else []) + list(teachers)
        self.teachers = nn.ModuleList([freeze(t) for t in all_teachers])
        self.lr = lr
        self.weight_decay = weight_decay
        self.last_terms: dict[str, torch.Tensor] = {}
        self._teacher_cache: torch.Tensor | None = None
        self._cached_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._eval_outputs: dict[str, list[tuple[torch.Tensor, ...]]] = {}

    # -- teachers -------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self.teachers[0] if len(self.teachers) else None

    def train(self, mode: bool = True) -> DistillModule:
        super().train(mode)
        for t in self.teachers:
            t.eval()
        return self

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teachers' logits on ``x`` (their mean when there are several).

        When the teacher cache is on and ``x`` is the current training batch's input tensor itself,
        the logits computed once for the whole training split are returned instead.
        """
        cached = self._cached_batch
        if cached is not None and x is cached[0]:
            return cached[1]
        outs = [t(x) for t in self.teachers]
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)

    #: Whether a method reads the teacher only through ``teacher_logits(batch inputs)``, so that
    #: the teacher's outputs on a deterministic training set can be computed once and reused.
    supports_teacher_cache: bool = False

    @torch.no_grad()
    def cache_teacher_outputs(self, inputs: torch.Tensor, batch_size: int = 1024) -> None:
        """Compute the teachers' logits on every training input once (see :meth:`teacher_logits`)."""
        self._cached_batch = None
        parts = [self.teacher_logits(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
        self._teacher_cache = torch.cat(parts)

    def student_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    # -- the one hook each method writes ----------------------------------------------------------
    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        """Named loss terms of one batch; the total to minimise under ``"loss"``."""
        raise NotImplementedError

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        cache = self._teacher_cache
        if cache is not None and isinstance(batch, (list, tuple)) and len(batch) > 2:
            if cache.device != batch[0].device:
                self._teacher_cache = cache = cache.to(batch[0].device)
            self._cached_batch = (batch[0], cache[batch[-1]])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        if "loss" not in terms:
            raise KeyError(f"{type(self).__name__}.loss_terms must return the total under 'loss'")
        self.last_terms = terms
        if self._logs_this_step():
            self._log_terms(terms, _batch_size(batch))
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

    # -- the lean path: direct logging, stepping in training_step ----------------------------------
    #: Set when training starts: the run has only nbdistill's logger and callbacks (as ``nd.fit``
    #: makes it), so nothing else needs Lightning's ``self.log`` results or its automatic loop.
    _lean = False

    def on_train_start(self) -> None:
        self._lean = self._only_nbdistill_around()
        counts = _step_counts(self.trainer)
        self.automatic_optimization = not self._can_step_itself()
        _carry_step_count(self.trainer, counts)

    def _only_nbdistill_around(self) -> bool:
        """Whether the Trainer has the run logger alone and no callbacks but nbdistill's (and
        Lightning's progress bar and model summary, which read no metrics of ours)."""
        from pytorch_lightning.callbacks import ModelSummary, ProgressBar

        from .callbacks import RunControl

        trainer = self.trainer
        loggers = trainer.loggers
        return (
            len(loggers) == 1
            and isinstance(loggers[0], RunLogger)
            and all(isinstance(cb, (RunControl, ProgressBar, ModelSummary)) for cb in trainer.callbacks)
        )

    def _can_step_itself(self) -> bool:
        """Whether :meth:`_step` may replace Lightning's automatic optimisation for this run.

        Lightning's automatic loop wraps every step in a closure and a chain of hooks; stepping in
        ``training_step`` (Lightning's manual optimisation, still through its optimizer wrapper,
        ``manual_backward`` and their hooks, so precision plugins, the NaN guard and
        ``on_before_optimizer_step`` all run) costs ~0.12 ms less a step, a tenth of a small
        student's step. Only where nothing differs: nbdistill's logger and callbacks alone (a user's
        callback may rely on the automatic loop: accumulation schedules, SWA), the base
        ``training_step`` and none of the optimisation hooks overridden, one optimiser and no LR
        scheduler, no gradient clipping or accumulation set on the Trainer.
        """
        trainer = self.trainer
        overridden = any(
            getattr(type(self), hook) is not getattr(pl.LightningModule, hook)
            for hook in (
                "optimizer_step",
                "optimizer_zero_grad",
                "configure_gradient_clipping",
                "on_before_zero_grad",
                "backward",
            )
        )
        return (
            self._lean
            and type(self).training_step is DistillModule.training_step
            and not overridden
            and len(trainer.optimizers) == 1
            and not trainer.lr_scheduler_configs
            and not trainer.gradient_clip_val
            and trainer.accumulate_grad_batches == 1
        )

    def _step(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss`` (see :meth:`_can_step_itself`)."""
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def _logs_this_step(self) -> bool:
        """Whether this step's terms are logged: the steps Lightning's ``log_every_n_steps`` keeps."""
        if self._trainer is None:
            return True
        connector = getattr(self.trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    def _log_terms(self, terms: dict[str, torch.Tensor], batch_size: int | None) -> None:
        """Hand the loss terms to the run folder as ``train/<term>`` scalars.

        On the lean path (the run logger alone, nbdistill's callbacks alone, as ``nd.fit`` makes
        it) the values go straight to its writer, in one device-to-host copy: ``self.log`` costs
        about 1 ms a call (Lightning's result collection), more than a small network's whole
        training step. With any other logger or callback (``nbdistill fit`` with a user's
        TensorBoard logger or ModelCheckpoint) they go through ``self.log``, so that those see them.
        """
        writer = self._run_writer() if self._lean else None
        if writer is None:
            for name, value in terms.items():
                self.log(f"train/{name}", self._scalar_term(name, value), on_step=True, on_epoch=False, batch_size=batch_size)
            return
        try:
            values = torch.stack([v.detach().float().reshape(()) for v in terms.values()]).tolist()
        except (AttributeError, RuntimeError):  # a float, or a term that is not a scalar: say which
            values = [float(self._scalar_term(name, value)) for name, value in terms.items()]
        writer.epoch = self.current_epoch
        step = self.global_step  # what Lightning's logger connector records: the steps before this batch
        for name, value in zip(terms, values):
            writer.scalar(f"train/{name}", value, step=step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        clipping = self._trainer is not None and bool(self.trainer.gradient_clip_val)
        return adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=not clipping)

    # -- input checks, before any training step ---------------------------------------------------
    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the problem if models and data do not fit together."""
        batch = as_pair(batch)
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ConfigError(
                f"{type(self).__name__} needs batches of (inputs, labels), got {type(batch).__name__}; make the data "
                "yield (x, y) pairs or pass data=(X, y)"
            )
        x, _ = batch[0], batch[1]
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"the batches' inputs must be tensors, got {type(x).__name__}; make the data yield (x, y) tensors")
        shape = tuple(x.shape[1:])
        with torch.no_grad():
            s = _probe(self.student, x[:2], "student", shape)
            if s.dim() != 2:
                raise ConfigError(f"the student must output logits of shape [batch, classes], got {tuple(s.shape)}")
            for i, t in enumerate(self.teachers):
                out = _probe(t, x[:2], "teacher" if len(self.teachers) == 1 else f"teacher {i}", shape)
                if out.shape[-1] != s.shape[-1]:
                    raise ConfigError(
                        f"the student outputs {s.shape[-1]} classes but the teacher outputs {out.shape[-1]}; "
                        "give the student's last layer as many outputs as the teacher's"
                    )
        if num_classes is not None and s.shape[-1] != num_classes:
            raise ConfigError(
                f"the data has {num_classes} classes but the student outputs {s.shape[-1]}; give the student's last "
                f"layer {num_classes} outputs (or, if the data has fewer classes, its labels must be 0..{s.shape[-1] - 1})"
            )

    # -- gap metrics ---------------------------------------------------------------------------
    def _collect(self, batch: Any, stage: str) -> None:
        x, y = batch[0], batch[1]
        s = self.student_logits(x).detach()
        t = self.teacher_logits(x).detach() if len(self.teachers) else s
        self._eval_outputs.setdefault(stage, []).append((t.cpu(), s.cpu(), y.cpu()))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._collect(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._collect(batch, "test")

    def evaluation_metrics(self, stage: str) -> dict[str, Any]:
        """Gap metrics over what ``_collect`` gathered for ``stage``; override for non-classifiers."""
        outputs = self._eval_outputs.pop(stage, [])
        if not outputs:
            return {}
        t, s, y = (torch.cat(parts) for parts in zip(*outputs))
        if stage == "val" and self._trainer is not None and self.trainer.world_size > 1:
            # each process saw its shard of the validation set: measure on all of them
            t, s, y = (self.all_gather(v.to(self.device)).flatten(0, 1).cpu() for v in (t, s, y))
        return classification_gap(t, s, y, num_classes=s.shape[-1])

    def _log_evaluation(self, stage: str) -> dict[str, Any]:
        metrics = self.evaluation_metrics(stage)
        if not metrics:
            return metrics
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        if not len(self.teachers):
            scalars = {k: v for k, v in scalars.items() if k == "student_acc"}
        writer = self._run_writer() if self._lean and self.trainer.state.fn == "fit" else None
        if writer is None:  # (``trainer.validate()``/``test()`` return what ``self.log`` collects)
            for name, value in scalars.items():
                self.log(f"{stage}/{name}", float(value), sync_dist=False)
            writer = self._run_writer()
            if writer is not None:
                self._write_per_class(writer, stage, metrics)
            return metrics
        # straight to the run folder (see _log_terms); callbacks that monitor a metric
        # (EarlyStopping, ModelCheckpoint) still find it in trainer.callback_metrics
        writer.epoch = self.current_epoch
        for name, value in scalars.items():
            writer.scalar(f"{stage}/{name}", float(value), step=self.global_step)
            self.trainer.callback_metrics[f"{stage}/{name}"] = torch.tensor(float(value))
        self._write_per_class(writer, stage, metrics)
        return metrics

    def _write_per_class(self, writer, stage: str, metrics: dict[str, Any]) -> None:
        """Per-class gap (``points``) and the teacher-vs-student agreement matrix (``table``)."""
        if not len(self.teachers) or "per_class_gap" not in metrics:
            return
        classes = list(range(len(metrics["per_class_gap"])))
        writer.points(
            f"{stage}/per_class_gap",
            classes,
            metrics["per_class_gap"],
            step=self.global_step,
            teacher=metrics["per_class_teacher"],
            student=metrics["per_class_student"],
        )
        if "agreement_matrix" in metrics:
            writer.table(f"{stage}/agreement_matrix", classes, metrics["agreement_matrix"], step=self.global_step)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_evaluation("val")
        else:
            self._eval_outputs.pop("val", None)

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def on_fit_end(self) -> None:
        """Measure the gap on the test split once training ends (finished or stopped)."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "test_dataloader"):
            return
        was_training = self.training
        self.eval()
        with torch.no_grad():
            for batch in dm.test_dataloader():
                batch = [b.to(self.device) for b in as_pair(batch)]
                self._collect(batch, "test")
        self.train(was_training)
        metrics = self.evaluation_metrics("test")
        writer = self._run_writer()
        if writer is None:
            return
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and (len(self.teachers) or name == "student_acc"):
                writer.scalar(f"test/{name}", value, step=self.global_step)
        self._write_per_class(writer, "test", metrics)
        writer.flush()

    def _run_writer(self):
        if self._trainer is None:
            return None
        for logger in self.trainer.loggers:
            if isinstance(logger, RunLogger):
                return logger.experiment
        return None


def _step_counts(trainer: pl.Trainer) -> tuple[int, int] | None:
    """The optimiser steps counted by Lightning's automatic and manual loops (one of them is 0)."""
    try:
        loop = trainer.fit_loop.epoch_loop
        return (
            loop.automatic_optimization.optim_progress.optimizer.step.total.completed,
            loop.manual_optimization.optim_step_progress.total.completed,
        )
    except AttributeError:  # another Lightning version: nothing to carry over
        return None


def _carry_step_count(trainer: pl.Trainer, counts: tuple[int, int] | None) -> None:
    """Lightning's ``global_step`` reads the counter of the loop in use: a checkpoint saved under
    the other loop (a run resumed with other Trainer settings, or from before nbdistill stepped in
    ``training_step``) would restart it at 0. The counter in use takes over the saved count."""
    if counts is None or not any(counts):
        return
    loop = trainer.fit_loop.epoch_loop
    saved = max(counts)
    if trainer.lightning_module.automatic_optimization:
        progress = loop.automatic_optimization.optim_progress.optimizer.step.total
    else:
        progress = loop.manual_optimization.optim_step_progress.total
    if progress.completed < saved:
        progress.ready = progress.completed = saved


#: Attributes set on every step that hold plain values (see ``DistillModule.__setattr__``).
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "_cached_batch", "last_terms"})

# Lightning reads the signature of ``training_step`` and the evaluation steps on every call (to
# know whether to pass ``batch_idx``); a precomputed ``__signature__`` is what ``inspect`` returns
# at once instead of rebuilding it (~12 us -> ~4 us a call).
for _hook in (DistillModule.training_step, DistillModule.validation_step, DistillModule.test_step):
    _hook.__signature__ = inspect.signature(_hook)
del _hook


def _batch_size(batch: Any) -> int | None:
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].shape[0]
    return None


def _probe(model: nn.Module, x: torch.Tensor, who: str, shape: tuple) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(x)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"the {who} cannot take the data's inputs of shape {list(shape)}: {exc}") from exc
    finally:
        model.train(was_training)
