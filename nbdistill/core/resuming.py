"""``nd.fit``'s run-folder checks and endings: what is refused before training, and what ``run.json``
says after a failure, an interrupt or a resume that could not start.

- Before training: a resume needs the same method, a checkpoint, epochs left before its target and
  no live writer (:func:`check_resumable`); a new ``run_id`` must be free (:func:`check_new_run_id`);
  the run folder must be writable and the writer lock free (:func:`open_run_folder`). Each is a
  :class:`~.errors.ConfigError` naming the run and the fix, and none changes the run.
- After training ended with an exception (:func:`after_failure`): a resume that failed before its
  first step puts ``run.json`` back as it was and raises :class:`~.errors.ConfigError`; Ctrl-C is
  raised again as ``KeyboardInterrupt`` (the run is ``stopped``, see :class:`~.callbacks.RunStatus`);
  anything else leaves the run ``failed`` and raises :class:`~.errors.TrainingFailed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .callbacks import RunControl
from .errors import ConfigError, RunFolderError, TrainingFailed
from .liveness import RunLocked, effective_status
from .logger import RunLogger
from .run import Run
from .runfolder import RunFolder, is_valid_run_id


def check_resumable(previous: Run, method: str, max_epochs: int) -> Path:
    """The checkpoint to resume ``previous`` from; :class:`ConfigError` if it cannot be resumed."""
    if previous.method != method:
        raise ConfigError(f"cannot resume a {previous.method} run as {method}")
    if effective_status(previous.path, previous.info) == "running":
        raise RunLocked(
            f"run {previous.id} is being written by another process or training right now ({previous.path}); "
            "wait for it to end, or stop it (nd.runs.open(...).request_stop()) and then resume it"
        )
    checkpoint = previous.checkpoint
    if checkpoint is None:
        raise ConfigError(
            f"run {previous.id} has no checkpoint to resume from (it is {previous.status}; a run saves one "
            "every few epochs while it trains and when it ends): start it again with nd.fit"
        )
    try:
        done = previous.epochs_done()
    except RunFolderError as exc:
        raise ConfigError(f"run {previous.id} cannot be resumed: {exc}") from None
    if done is not None and isinstance(max_epochs, int) and done >= max_epochs:
        raise ConfigError(
            f"run {previous.id} has already trained {done} epochs, which reaches max_epochs={max_epochs}: "
            f"pass max_epochs greater than {done} to train it further"
        )
    return checkpoint


def check_new_run_id(root: Path, run_id: str) -> None:
    if not isinstance(run_id, str) or not is_valid_run_id(run_id):
        raise ConfigError(
            f"run_id {run_id!r} is not a valid run id: use letters, digits, '.', '_' and '-' (at most 128, "
            "starting with a letter or digit)"
        )
    if RunFolder(root / run_id).run_json.exists():
        raise ConfigError(
            f"a run with id {run_id!r} already exists in {root}: pick another run_id, or continue that run "
            f"with nd.resume({str(root / run_id)!r})"
        )


def open_run_folder(logger: RunLogger) -> None:
    """Open the run folder now (writer lock, ``run.json``): its problems are :class:`ConfigError` before training."""
    try:
        _ = logger.experiment
    except OSError as exc:
        raise ConfigError(
            f"cannot write the run folder {logger.folder}: {exc.strerror or exc}; pass runs_root=... "
            "(or set $NBDISTILL_RUNS) to a folder you can write"
        ) from None


def _run_or_none(folder: Path) -> Run | None:
    try:
        return Run(folder)
    except RunFolderError:
        return None


def after_failure(
    method: str,
    logger: RunLogger,
    control: RunControl,
    previous: Run | None,
    exc: BaseException,
    raise_on_failure: bool,
) -> Any:
    """What ``nd.fit`` does when ``trainer.fit`` raised ``exc`` (see the module docstring)."""
    status = control.status
    if previous is not None and not status.started and logger.restore():
        if isinstance(status.interrupted, KeyboardInterrupt) or isinstance(exc, KeyboardInterrupt):
            # Ctrl-C before the resume's first step (Lightning turned it into sys.exit(1))
            stop = KeyboardInterrupt(f"interrupted before the resume of run {previous.id} trained a step; it is left as it was")
            stop.run = previous
            raise stop from None
        if isinstance(exc, Exception):
            raise ConfigError(
                f"run {previous.id} could not be resumed, and is left as it was: {type(exc).__name__}: {exc}. "
                "Resume it with the student, teacher(s) and data it was trained with"
            ) from exc
        raise exc
    interrupted = status.interrupted
    run = _run_or_none(logger.folder)
    if isinstance(interrupted, KeyboardInterrupt) or isinstance(exc, KeyboardInterrupt):
        # Lightning answers Ctrl-C with sys.exit(1); the caller (a notebook cell) gets the interrupt back
        where = f"run {run.id} is {run.status}" if run is not None else "no run folder was written"
        stop = KeyboardInterrupt(
            f"interrupted: {where}" + ("; nd.resume(run) continues it" if run is not None and run.checkpoint else "")
        )
        stop.run = run
        raise stop from None
    if interrupted is not None or not isinstance(exc, Exception):
        raise exc  # SIGTERM (the run is stopped and saved) or SystemExit: the process ends as asked
    if logger.recorded_status == "running":  # the failure came before Lightning's on_exception could record it
        try:
            logger.experiment.set_status("failed", f"{type(exc).__name__}: {exc}")
            logger.close()
        except (OSError, ConfigError):  # a full disk, or the folder taken by another writer since:
            pass  # the training error below is what the caller must see
        run = _run_or_none(logger.folder)
    if raise_on_failure:
        raise TrainingFailed(f"{method} failed: {type(exc).__name__}: {exc}", run) from exc
    return run
