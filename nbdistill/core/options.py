"""The three groups of what :func:`nbdistill.fit` takes besides the method and the models: the
method's hyper-parameters (declared by the method), how to train (:class:`TrainerOptions`) and what
to do with the run (:class:`RunOptions`). ``fit`` takes them flat too (``max_epochs=5, seed=1,
temperature=2.0``) and sorts each name into its group here, so a call reads as it always did."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class TrainerOptions:
    """How to train: passed to Lightning's ``Trainer`` (``extra``: any other Trainer argument)."""

    max_epochs: int = 20
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    progress_bar: bool = False
    #: Compute the teacher's outputs on the training set once, where the method allows it and the
    #: data is not augmented (distilling then costs about what training alone costs).
    cache_teacher: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOptions:
    """What to do with the run: where it goes, how it is watched, stopped, checkpointed and resumed."""

    seed: int = 0
    runs_root: str | os.PathLike | None = None
    run_id: str | None = None
    resume: Any = None  # a Run or a run folder's path
    observers: Sequence[Any] = ()
    stop_event: threading.Event | None = None
    progress: Callable[[int, int, dict], None] | None = None
    raise_on_failure: bool = True
    checkpoint_every_epochs: int | None = 10
    checkpoint_every_s: float | None = 120.0


#: Flat names that are not fields of the groups but mean one (the Trainer's extra arguments).
_ALIASES = {"trainer_kwargs": ("trainer", "extra")}


def group_arguments(
    flat: dict[str, Any],
    hparams: Mapping[str, Any] | None = None,
    trainer: TrainerOptions | Mapping[str, Any] | None = None,
    run: RunOptions | Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], TrainerOptions, RunOptions]:
    """Sort ``fit``'s flat keyword arguments into hyper-parameters, trainer options and run options
    (on top of the groups given as such); a :class:`ConfigError` for a name given twice."""
    trainer = _as(TrainerOptions, trainer, "trainer")
    run = _as(RunOptions, run, "run")
    hparams = dict(hparams or {})
    names = {"trainer": {f.name for f in fields(TrainerOptions)}, "run": {f.name for f in fields(RunOptions)}}
    updates: dict[str, dict[str, Any]] = {"trainer": {}, "run": {}}
    for key, value in flat.items():
        group, name = _ALIASES.get(key, (None, key))
        group = group or next((g for g, known in names.items() if key in known), None)
        if group is None:
            target = hparams
        else:
            target = updates[group]
            if value is None and name == "extra":
                continue
        if name in target:
            raise ConfigError(f"{name!r} is given twice (once in a group, once as a keyword); give it once")
        target[name] = value
    return hparams, replace(trainer, **updates["trainer"]), replace(run, **updates["run"])


def _as(cls: type, value: Any, what: str) -> Any:
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown {what} option(s) {unknown}; {cls.__name__} takes {sorted(f.name for f in fields(cls))}")
        return cls(**value)
    raise ConfigError(f"{what}= must be a {cls.__name__} or a dict, got {type(value).__name__}")
