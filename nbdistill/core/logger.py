"""``RunLogger``: a Lightning logger that writes the run folder (see :mod:`.runfolder`).

``self.log(...)`` in any module lands in ``events.jsonl`` as ``scalar`` events; the other kinds go
through ``logger.experiment`` (a :class:`RunWriter`). In-process observers (the live panel) get
every event as it is made, before it reaches the disk. Only global rank 0 writes.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from .errors import ConfigError
from .liveness import HEARTBEAT_EVERY, acquire_writer_lock, release_writer_lock, this_host
from .runfolder import (
    CHECKPOINTS,
    EVENTS,
    MEDIA,
    RUN_JSON,
    STOP_REQUEST,
    _json_default,
    drop_partial_line,
    is_disk_full,
    read_run_json,
    runs_root,
    write_bytes_atomic,
    write_json_atomic,
    write_json_in_place,
)

Observer = Callable[[dict], None]


def _versions() -> dict[str, str]:
    import pytorch_lightning
    import torch

    from .version import __version__

    return {
        "nbdistill": __version__,
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "python": platform.python_version(),
    }


def new_run_id(method: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method.replace('.', '-')}-{secrets.token_hex(2)}"


#: Writers whose last ``run.json`` could not be written (a full disk); retried when the process exits.
_UNSAVED: weakref.WeakSet[RunWriter] = weakref.WeakSet()


@atexit.register
def _save_unsaved() -> None:
    for writer in list(_UNSAVED):
        writer.save_info()


class RunWriter:
    """Writes one run folder: ``run.json`` updates and batched appends to ``events.jsonl``.

    Events are buffered and flushed when ``flush_every`` seconds have passed since the last flush,
    at every status change and on :meth:`close`, so a crash loses at most that window. A flush also
    refreshes ``run.json``'s ``heartbeat`` when :data:`~.liveness.HEARTBEAT_EVERY` seconds have passed.

    The writer holds the run's writer lock (``lock_fd``, from :func:`~.liveness.acquire_writer_lock`)
    until :meth:`close`. ``run.json`` is kept in memory (``info``): when it cannot be written (a full
    disk) the change is kept, retried at the next write, at :meth:`close` and when the process exits,
    and a final status falls back to overwriting ``run.json`` in place (:func:`~.runfolder.write_json_in_place`).
    """

    def __init__(self, folder: Path, info: dict[str, Any], flush_every: float = 0.5, lock_fd: int | None = None):
        self.folder = folder
        self.info = info
        self.flush_every = flush_every
        self.observers: list[Observer] = []
        self.step = 0
        self.epoch = 0
        self.unsaved = False
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()
        self._last_beat = time.monotonic()
        self._lock = threading.Lock()
        self._lock_fd = lock_fd
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHECKPOINTS).mkdir(exist_ok=True)
        drop_partial_line(folder / EVENTS)  # under the lock: no other writer appends
        self._events = open(folder / EVENTS, "a", encoding="utf-8")
        info.update(pid=os.getpid(), host=this_host(), heartbeat=time.time())
        try:
            self.write_info()
        except BaseException:
            self._events.close()
            raise

    # -- run.json -----------------------------------------------------------------------------
    def write_info(self, **changes: Any) -> None:
        """Record ``changes`` in ``run.json``; raises ``OSError`` if it cannot be written (kept to retry)."""
        self.info.update(changes)
        if not self.save_info():
            raise self._save_error

    def save_info(self) -> bool:
        """Write ``info`` to ``run.json``; ``False`` (and kept to retry) when the disk refuses it."""
        try:
            write_json_atomic(self.folder / RUN_JSON, self.info)
        except OSError as exc:
            self._save_error = exc
            if (
                is_disk_full(exc)
                and self.info.get("status") != "running"
                and write_json_in_place(self.folder / RUN_JSON, self.info, optional=("traceback", "setting", "versions"))
            ):
                self.unsaved = False
                _UNSAVED.discard(self)
                return True
            self.unsaved = True
            _UNSAVED.add(self)
            return False
        self.unsaved = False
        _UNSAVED.discard(self)
        return True

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> bool:
        """Record a status change (and ``extra`` fields) in one write; never raises for a full disk.

        Returns whether ``run.json`` was written; if not, the status is kept and retried (see the class).
        """
        try:
            self.flush(beat=False)
        except OSError:  # the disk is full: the status matters more than the last events
            pass
        changes: dict[str, Any] = {"status": status, "heartbeat": time.time()}
        if status == "running":
            changes.update(ended=None, error=None)
        else:
            changes["ended"] = time.time()
        if error is not None:
            changes["error"] = error
        self.info.update(changes, **extra)
        return self.save_info()

    # -- events -------------------------------------------------------------------------------
    def emit(self, kind: str, name: str, step: int | None = None, **fields: Any) -> dict:
        event = {
            "step": int(self.step if step is None else step),
            "epoch": int(self.epoch),
            "time": round(time.time(), 3),
            "kind": kind,
            "name": name,
            **fields,
        }
        line = json.dumps(event, default=_json_default, allow_nan=True)
        with self._lock:
            self._buffer.append(line)
        for observer in list(self.observers):
            observer(event)
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()
        return event

    def scalar(self, name: str, value: float, step: int | None = None) -> dict:
        return self.emit("scalar", name, step, value=float(value))

    def histogram(self, name: str, counts, edges=None, step: int | None = None, **extra: Any) -> dict:
        counts = np.asarray(counts, dtype=float)
        if edges is None:
            edges = np.arange(len(counts) + 1, dtype=float)
        return self.emit("histogram", name, step, edges=np.asarray(edges).tolist(), counts=counts.tolist(), **extra)

    def points(self, name: str, x, y, label: str | None = None, step: int | None = None, **extra: Any) -> dict:
        fields: dict[str, Any] = {"x": np.asarray(x).tolist(), "y": np.asarray(y).tolist(), **extra}
        if label is not None:
            fields["label"] = label
        return self.emit("points", name, step, **fields)

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> dict:
        return self.emit("table", name, step, columns=list(columns), rows=[list(r) for r in rows])

    def image(self, name: str, png_bytes: bytes, step: int | None = None, **extra: Any) -> dict:
        media = self.folder / MEDIA
        media.mkdir(exist_ok=True)
        step_ = int(self.step if step is None else step)
        rel = f"{MEDIA}/{name.replace('/', '_')}-{step_:08d}.png"
        (self.folder / rel).write_bytes(png_bytes)
        return self.emit("image", name, step_, path=rel, **extra)

    def flush(self, beat: bool = True) -> None:
        """Append the buffered events; refresh the heartbeat (and retry an unsaved ``run.json``) when due."""
        with self._lock:
            lines, self._buffer = self._buffer, []
            self._last_flush = now = time.monotonic()
            if lines and not self._events.closed:
                self._events.write("\n".join(lines) + "\n")
                self._events.flush()
        if beat and (self.unsaved or now - self._last_beat >= HEARTBEAT_EVERY) and not self._events.closed:
            self._last_beat = now
            self.info["heartbeat"] = time.time()
            self.save_info()

    def close(self) -> None:
        """Flush, write what ``run.json`` still lacks, and release the run's writer lock."""
        try:
            self.flush(beat=False)
        except OSError:
            pass
        with self._lock:
            try:
                self._events.close()
            except OSError:  # what the full disk refused is lost; the file keeps its complete lines
                pass
        if self.unsaved:
            self.save_info()
        fd, self._lock_fd = self._lock_fd, None
        release_writer_lock(fd)

    @property
    def closed(self) -> bool:
        return self._lock_fd is None and self._events.closed

    @property
    def stop_requested(self) -> bool:
        return (self.folder / STOP_REQUEST).exists()


class _NullWriter:
    """What ``experiment`` is on ranks other than 0: accepts every call, writes nothing."""

    observers: list[Observer] = []
    stop_requested = False

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class RunLogger(Logger):
    """Lightning logger writing an nbdistill run folder (``run.json``, ``events.jsonl``, ``checkpoints/``).

    Args:
        root: runs root; default ``$NBDISTILL_RUNS`` or ``./nbdistill-runs``.
        run_id: folder name; default ``<time>-<method>-<random>``. A run with this id must not exist
            yet, unless ``resume``.
        method: registered method name, recorded in ``run.json`` (filled from the module when
            training starts if not given).
        observers: callables receiving every event dict in-process, as it is made.
        flush_every: seconds between appends to ``events.jsonl``.
        resume: continue the existing run ``run_id`` (what :func:`nbdistill.resume` does).

    The run folder is opened (created, or continued) on first use of :attr:`experiment`, which takes
    the run's writer lock (:class:`~.liveness.RunLocked` if another writer has it); :meth:`finalize`
    (Lightning calls it when training ends) or :meth:`close` releases it.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        run_id: str | None = None,
        method: str | None = None,
        observers: list[Observer] | tuple[Observer, ...] = (),
        flush_every: float = 0.5,
        resume: bool = False,
    ):
        super().__init__()
        self._root = runs_root(root)
        self._run_id = run_id
        self._method = method
        self._observers = list(observers)
        self._flush_every = flush_every
        self._resume = resume
        self._opened = False
        #: ``run.json`` as it was before this logger continued the run (see :meth:`restore`).
        self.snapshot: bytes | None = None
        self._last_info: dict[str, Any] | None = None
        self._writer: RunWriter | None = None

    @property
    def run_id(self) -> str:
        if self._run_id is None:
            self._run_id = new_run_id(self._method or "run")
        return self._run_id

    # Lightning puts checkpoints under ``save_dir/name/version/checkpoints`` and the CLI's config
    # under ``save_dir``: with an empty name and version both land inside the run folder.
    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def root(self) -> Path:
        """The runs root this logger writes under."""
        return self._root

    @property
    def root_dir(self) -> str:
        return str(self._root)

    @property
    def save_dir(self) -> str:
        return str(self.folder)

    @property
    def log_dir(self) -> str:
        return str(self.folder)

    @property
    def folder(self) -> Path:
        return self._root / self.run_id

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / CHECKPOINTS / "last.ckpt"

    def add_observer(self, observer: Observer) -> None:
        self._observers.append(observer)
        if self._writer is not None:
            self._writer.observers.append(observer)

    @property
    def experiment(self) -> RunWriter | _NullWriter:
        if rank_zero_only.rank != 0:
            return _NullWriter()
        if self._writer is None:
            self._writer = self._open()
        return self._writer

    def _open(self) -> RunWriter:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        lock_fd = acquire_writer_lock(folder)
        try:
            if (folder / RUN_JSON).exists():
                if not (self._resume or self._opened):
                    raise ConfigError(
                        f"a run with id {self.run_id!r} already exists in {self._root}: pick another run_id, "
                        f"or continue that run with nd.resume({str(folder)!r})"
                    )
                if not self._opened:
                    self.snapshot = (folder / RUN_JSON).read_bytes()
                info = read_run_json(folder)
                if not self._opened:
                    info.setdefault("resumed", []).append(time.time())
            else:
                info = {
                    "id": self.run_id,
                    "family": (self._method or "").split(".")[0] or None,
                    "method": self._method,
                    "hparams": {},
                    "status": "running",
                    "error": None,
                    "started": time.time(),
                    "ended": None,
                    "versions": _versions(),
                }
            writer = RunWriter(folder, info, self._flush_every, lock_fd=lock_fd)
        except BaseException:
            release_writer_lock(lock_fd)
            raise
        writer.observers.extend(self._observers)
        self._opened = True
        return writer

    @rank_zero_only
    def set_method(self, method: str) -> None:
        self._method = method
        self.experiment.write_info(method=method, family=method.split(".")[0])

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        params = dict(params) if not isinstance(params, dict) else params
        clean = {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool, type(None), list, tuple))}
        hp = dict(self.experiment.info.get("hparams") or {})
        hp.update(clean)
        self.experiment.write_info(hparams=hp)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        writer = self.experiment
        metrics = dict(metrics)
        if "epoch" in metrics:
            writer.epoch = int(metrics.pop("epoch"))
        if step is not None:
            writer.step = int(step)
        for name, value in metrics.items():
            writer.scalar(name, value)

    @rank_zero_only
    def save(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Lightning's end of training: write what is buffered and release the run (see :meth:`close`)."""
        self.close()

    def close(self) -> None:
        """Flush, retry an unsaved ``run.json`` and release the writer lock; a later write reopens the run."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._last_info = writer.info
            writer.close()

    @property
    def recorded_status(self) -> str | None:
        """The run's status as this logger's writer last recorded it (in memory, even if the disk refused it)."""
        info = self._writer.info if self._writer is not None else self._last_info
        return info.get("status") if info is not None else None

    def restore(self) -> bool:
        """Put back ``run.json`` as it was before this logger continued the run (a resume that could
        not start leaves the run as it was); returns whether it did. Takes the writer lock to do it."""
        if self.snapshot is None:
            return False
        self.close()
        try:
            fd = acquire_writer_lock(self.folder)
        except ConfigError:  # another writer has taken the run since
            return False
        try:
            write_bytes_atomic(self.folder / RUN_JSON, self.snapshot)
        except OSError:  # the disk refuses: the failure being reported matters more than this
            return False
        finally:
            release_writer_lock(fd)
        return True
