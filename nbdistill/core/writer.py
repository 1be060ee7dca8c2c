"""``RunWriter``: what writes one run folder while it trains (``run.json`` updates, batched events).

The folder's files are reached through :class:`~.runfolder.RunFolder`; :class:`~.logger.RunLogger`
(the Lightning logger) opens one writer per run and hands it out as its ``experiment``.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .liveness import HEARTBEAT_EVERY, release_writer_lock, this_host
from .runfolder import RunFolder, _json_default, is_disk_full

Observer = Callable[[dict], None]


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
    and a final status falls back to overwriting ``run.json`` in place (:meth:`~.runfolder.RunFolder.write_info_in_place`).
    """

    def __init__(self, folder: Path, info: dict[str, Any], flush_every: float = 0.5, lock_fd: int | None = None):
        self.folder = Path(folder)
        self.run_folder = RunFolder(folder)
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
        self._events = self.run_folder.open_for_writing()  # under the lock: no other writer appends
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
            self.run_folder.write_info(self.info)
        except OSError as exc:
            self._save_error = exc
            if (
                is_disk_full(exc)
                and self.info.get("status") != "running"
                and self.run_folder.write_info_in_place(self.info, optional=("traceback", "setting", "versions"))
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
        step_ = int(self.step if step is None else step)
        return self.emit("image", name, step_, path=self.run_folder.save_media(name, step_, png_bytes), **extra)

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
        return self.run_folder.stop_requested


class _NullWriter:
    """What ``experiment`` is on ranks other than 0: accepts every call, writes nothing."""

    observers: list[Observer] = []
    stop_requested = False

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
