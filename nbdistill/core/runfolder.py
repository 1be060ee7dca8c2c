"""The run folder: the one contract between training and every view.

A run is a folder ``<runs root>/<run id>/`` holding

- ``run.json``: family, method, hyper-parameters, status (``running``, ``finished``, ``stopped``,
  ``failed`` with ``error``), ``started``/``ended`` times (Unix seconds), versions;
- ``events.jsonl``: append-only, one JSON object a line,
  ``{"step", "epoch", "time", "kind", "name", ...}`` where ``kind`` is ``scalar`` (``value``),
  ``histogram`` (``edges``, ``counts``), ``points`` (``x``, ``y``, optional ``label``),
  ``image`` (``path`` under ``media/``) or ``table`` (``columns``, ``rows``);
- ``checkpoints/``: Lightning checkpoints (``last.ckpt``, written periodically while training and at
  its end, atomically), from which a stopped or lost run resumes;
- ``stop-request``: present when someone (a panel, the JupyterLab sidebar) asks the run to stop;
- ``writer.lock``: locked by the one process writing the run (see :mod:`.liveness`), which also
  records its ``pid``, ``host`` and ``heartbeat`` in ``run.json``. A ``running`` run whose writer
  is gone reads as ``lost``.

:class:`RunFolder` is the one owner of these names: the logger, ``Run``, the CLI and the Jupyter
server reach every file of a run through it. The runs root is ``$NBDISTILL_RUNS`` or
``./nbdistill-runs``. Readers share one bad-line policy (:mod:`.eventfile`): a bad line or field
is skipped and counted, never fatal, and a half-written last line is left for the next read.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, RunFolderError
from .eventfile import Page, open_regular, read_all_from

RUN_JSON = "run.json"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
MEDIA = "media"
STOP_REQUEST = "stop-request"
LOCK_FILE = "writer.lock"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def runs_root(root: str | os.PathLike | None = None) -> Path:
    """The runs root: ``root`` if given, else ``$NBDISTILL_RUNS``, else ``./nbdistill-runs``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("NBDISTILL_RUNS") or "nbdistill-runs")


def is_valid_run_id(run_id: str) -> bool:
    return bool(RUN_ID_PATTERN.match(run_id)) and run_id not in {".", ".."}


def check_runs_root(root: str | os.PathLike | None = None) -> Path:
    """The runs root (see :func:`runs_root`), after checking a run folder can be made in it.

    Raises :class:`ConfigError` naming the path when it, or a folder above it, is a file, or when
    the nearest existing folder is not writable.
    """
    base = runs_root(root)
    existing = base
    while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == base else f"lies under {existing}, which is a file, not a folder"
        raise ConfigError(f"the runs root {base} {what}: pass runs_root=... (or set $NBDISTILL_RUNS) to a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the runs root {base} is not writable ({existing} is read-only): pass runs_root=... "
            "(or set $NBDISTILL_RUNS) to a folder you can write"
        )
    return base


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file.

    The JSON goes to a temporary file beside ``path``, then replaces it (``os.replace``); on any
    failure (a full disk) the temporary file is removed and the error raised, ``path`` untouched.
    """
    write_bytes_atomic(path, json.dumps(data, indent=1, default=_json_default).encode())


def write_bytes_atomic(path: Path, content: bytes) -> None:
    """``content`` into ``path`` through a temporary file and ``os.replace`` (see :func:`write_json_atomic`)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_in_place(path: Path, data: dict[str, Any], optional: tuple[str, ...] = ()) -> bool:
    """Overwrite ``path`` with ``data`` inside the bytes it already has; the last resort on a full disk.

    A full disk refuses the temporary file of :func:`write_json_atomic`, but the blocks ``path``
    already holds can be overwritten: the compact JSON, padded with spaces (valid JSON whitespace)
    to the file's size, is written at offset 0 in one call, so nothing new is allocated. Keys in
    ``optional`` are dropped, in order, and a long ``error`` string shortened, until it fits.
    Returns whether it was written (not atomic: a reader may see it half-written and read again).
    """
    try:
        size = path.stat().st_size
    except OSError:
        return False
    data = dict(data)
    text = json.dumps(data, default=_json_default).encode()
    for key in optional:
        if len(text) <= size:
            break
        data.pop(key, None)
        text = json.dumps(data, default=_json_default).encode()
    error = data.get("error")
    while len(text) > size and isinstance(error, str) and error:
        error = error[: max(0, len(error) - (len(text) - size) - 8)]
        data["error"] = error + "…" if error else None
        text = json.dumps(data, default=_json_default).encode()
    if len(text) > size:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.pwrite(fd, text + b" " * (size - len(text)), 0) == size
    except OSError:
        return False
    finally:
        os.close(fd)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def drop_partial_line(path: Path) -> int:
    """Truncate ``path`` after its last newline (a line a killed writer left half-written).

    Returns the number of bytes dropped. Called by a writer, under the run's lock, before it
    appends: appending to a partial line would make both events unreadable.
    """
    try:
        f = open(path, "rb+")
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
        return size - keep


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


@dataclass(frozen=True)
class RunFolder:
    """One run folder ``path``: the names of its files, ``run.json``, the stop request, the checkpoint
    and ``events.jsonl``. Nothing is touched until a method is called; ``RunFolder(p)`` never fails.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, run_id: str, root: str | os.PathLike | None = None) -> RunFolder:
        """Run ``run_id`` under the runs root (see :func:`runs_root`)."""
        return cls(runs_root(root) / run_id)

    @property
    def id(self) -> str:
        return self.path.name

    # -- paths --------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def events(self) -> Path:
        return self.path / EVENTS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """Where the run's checkpoint is (``checkpoints/last.ckpt``), whether it is there or not."""
        return self.path / CHECKPOINTS / LAST_CHECKPOINT

    @property
    def media(self) -> Path:
        return self.path / MEDIA

    @property
    def stop_file(self) -> Path:
        return self.path / STOP_REQUEST

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    # -- run.json -----------------------------------------------------------------------------
    @property
    def has_info(self) -> bool:
        """Whether the folder holds a ``run.json`` (it is a run, readable or not)."""
        return self.run_json.is_file()

    def read_info_bytes(self, limit: int | None = None) -> bytes:
        """The bytes of ``run.json`` (at most ``limit + 1`` of them), opened without following a link.

        Raises ``FileNotFoundError``, :class:`~.eventfile.OutsideRoot` (a link) or
        :class:`~.eventfile.Unreadable` (a folder, a FIFO)."""
        with open_regular(self.run_json) as f:
            return f.read() if limit is None else f.read(limit + 1)

    def read_info(self) -> dict[str, Any]:
        """``run.json`` as a dict; :class:`RunFolderError` if the folder is not a readable run."""
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path} is not a run folder: no such directory")
        try:
            data = self.read_info_bytes()
        except FileNotFoundError:
            raise RunFolderError(f"{self.path} is not a run folder: it has no {RUN_JSON}") from None
        except OSError as exc:
            raise RunFolderError(f"{self.run_json} cannot be read: {exc}") from None
        try:
            info = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise RunFolderError(f"{self.run_json} is corrupt: {exc}") from exc
        if not isinstance(info, dict) or "method" not in info or "status" not in info:
            raise RunFolderError(f"{self.run_json} is corrupt: it lacks 'method' or 'status'")
        return info

    def write_info(self, info: dict[str, Any]) -> None:
        """Write ``run.json`` atomically (:func:`write_json_atomic`); ``OSError`` if the disk refuses."""
        write_json_atomic(self.run_json, info)

    def write_info_bytes(self, content: bytes) -> None:
        """Put back ``run.json`` as ``content`` (a snapshot of it), atomically."""
        write_bytes_atomic(self.run_json, content)

    def write_info_in_place(self, info: dict[str, Any], optional: tuple[str, ...] = ()) -> bool:
        """A full disk's last resort (:func:`write_json_in_place`); whether ``run.json`` was written."""
        return write_json_in_place(self.run_json, info, optional)

    # -- the stop request ---------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run's writer (in any process) to stop after its current batch.

        The file is created without following a link (``OSError`` if ``stop-request`` is one)."""
        os.close(os.open(self.stop_file, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))

    @property
    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def clear_stop(self) -> None:
        """Withdraw a stop request (a resume starts without the one that stopped the run)."""
        self.stop_file.unlink(missing_ok=True)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self) -> Path | None:
        """``checkpoints/last.ckpt`` if the run saved one, else ``None``."""
        path = self.last_checkpoint
        return path if path.exists() else None

    # -- events -------------------------------------------------------------------------------
    def open_for_writing(self) -> IO[str]:
        """Make the folder (and ``checkpoints/``) and open ``events.jsonl`` to append to.

        Called by the one writer, under the run's writer lock: a line a killed writer left
        half-written is dropped first (:func:`drop_partial_line`), so the next event is readable."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        drop_partial_line(self.events)
        return open(self.events, "a", encoding="utf-8")

    def save_media(self, name: str, step: int, content: bytes, suffix: str = ".png") -> str:
        """Write a media file for event ``name`` at ``step``; returns its path relative to the run folder."""
        self.media.mkdir(exist_ok=True)
        rel = f"{MEDIA}/{name.replace('/', '_')}-{step:08d}{suffix}"
        (self.path / rel).write_bytes(content)
        return rel

    def read_events(self, offset: int = 0, json_safe: bool = False) -> Page:
        """Events of ``events.jsonl`` from byte ``offset`` under the one bad-line policy (:mod:`.eventfile`).

        ``page.offset`` is where the next read starts (a half-written last line is left for it);
        ``page.skipped`` counts the bad lines and fields left out. A missing file reads as empty."""
        try:
            f = open_regular(self.events)
        except FileNotFoundError:
            return Page([], offset, offset, 0)
        with f:
            return read_all_from(f, offset, json_safe)
