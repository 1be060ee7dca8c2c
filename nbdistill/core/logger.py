"""``RunLogger``: a Lightning logger that writes the run folder (see :mod:`.runfolder`).

``self.log(...)`` in any module lands in ``events.jsonl`` as ``scalar`` events; the other kinds go
through ``logger.experiment`` (a :class:`RunWriter`). In-process observers (the live panel) get
every event as it is made, before it reaches the disk. Only global rank 0 writes.
"""
from __future__ import annotations

import json
import os
import platform
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from .runfolder import (
    CHECKPOINTS,
    EVENTS,
    MEDIA,
    RUN_JSON,
    STOP_REQUEST,
    _json_default,
    read_run_json,
    runs_root,
    write_json_atomic,
)

Observer = Callable[[dict], None]


def _versions() -> dict[str, str]:
    import pytorch_lightning
    import torch

    from .. import __version__

    return {
        "nbdistill": __version__,
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "python": platform.python_version(),
    }


def new_run_id(method: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method.replace('.', '-')}-{secrets.token_hex(2)}"


class RunWriter:
    """Writes one run folder: ``run.json`` updates and batched appends to ``events.jsonl``.

    Events are buffered and flushed when ``flush_every`` seconds have passed since the last flush,
    at every status change and on :meth:`close`, so a crash loses at most that window.
    """

    def __init__(self, folder: Path, info: dict[str, Any], flush_every: float = 0.5):
        self.folder = folder
        self.info = info
        self.flush_every = flush_every
        self.observers: list[Observer] = []
        self.step = 0
        self.epoch = 0
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHECKPOINTS).mkdir(exist_ok=True)
        self._events = open(folder / EVENTS, "a", encoding="utf-8")
        self.write_info()

    # -- run.json -----------------------------------------------------------------------------
    def write_info(self, **changes: Any) -> None:
        self.info.update(changes)
        write_json_atomic(self.folder / RUN_JSON, self.info)

    def set_status(self, status: str, error: str | None = None) -> None:
        self.flush()
        changes: dict[str, Any] = {"status": status}
        if status == "running":
            changes.update(ended=None, error=None)
        else:
            changes["ended"] = time.time()
        if error is not None:
            changes["error"] = error
        self.write_info(**changes)

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

    def flush(self) -> None:
        with self._lock:
            lines, self._buffer = self._buffer, []
            if lines and not self._events.closed:
                self._events.write("\n".join(lines) + "\n")
                self._events.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._events.close()

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
        run_id: folder name; default ``<time>-<method>-<random>``. An existing run folder with this
            id is continued (used to resume a stopped run).
        method: registered method name, recorded in ``run.json`` (filled from the module when
            training starts if not given).
        observers: callables receiving every event dict in-process, as it is made.
        flush_every: seconds between appends to ``events.jsonl``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        run_id: str | None = None,
        method: str | None = None,
        observers: list[Observer] | tuple[Observer, ...] = (),
        flush_every: float = 0.5,
    ):
        super().__init__()
        self._root = runs_root(root)
        self._run_id = run_id
        self._method = method
        self._observers = list(observers)
        self._flush_every = flush_every
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
        if (folder / RUN_JSON).exists():
            info = read_run_json(folder)
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
                "pid": os.getpid(),
                "host": platform.node(),
                "versions": _versions(),
            }
        writer = RunWriter(folder, info, self._flush_every)
        writer.observers.extend(self._observers)
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
        if self._writer is not None:
            self._writer.flush()
