"""``RunLogger``: a Lightning logger that writes the run folder (see :mod:`.runfolder`).

``self.log(...)`` in any module lands in ``events.jsonl`` as ``scalar`` events; the other kinds go
through ``logger.experiment`` (a :class:`~.writer.RunWriter`). In-process observers (the live panel) get
every event as it is made, before it reaches the disk. Only global rank 0 writes.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from .errors import ConfigError
from .liveness import acquire_writer_lock, release_writer_lock
from .runfolder import RunFolder, runs_root
from .writer import Observer, RunWriter, _NullWriter

__all__ = ["Observer", "RunLogger", "RunWriter", "new_run_id"]


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
    def run_folder(self) -> RunFolder:
        return RunFolder(self.folder)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_folder.last_checkpoint

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
        folder = self.run_folder
        folder.path.mkdir(parents=True, exist_ok=True)
        lock_fd = acquire_writer_lock(folder.path)
        try:
            if folder.run_json.exists():
                if not (self._resume or self._opened):
                    raise ConfigError(
                        f"a run with id {self.run_id!r} already exists in {self._root}: pick another run_id, "
                        f"or continue that run with nd.resume({str(folder.path)!r})"
                    )
                if not self._opened:
                    self.snapshot = folder.read_info_bytes()
                info = folder.read_info()
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
            writer = RunWriter(folder.path, info, self._flush_every, lock_fd=lock_fd)
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
            self.run_folder.write_info_bytes(self.snapshot)
        except OSError:  # the disk refuses: the failure being reported matters more than this
            return False
        finally:
            release_writer_lock(fd)
        return True
