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

The runs root is ``$NBDISTILL_RUNS`` or ``./nbdistill-runs``. Readers tolerate a half-written last
line (it is left for the next read) and skip garbage lines with a warning.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .errors import ConfigError, RunFolderError

RUN_JSON = "run.json"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
MEDIA = "media"
STOP_REQUEST = "stop-request"
STATUSES = ("running", "finished", "stopped", "failed")
EVENT_KINDS = ("scalar", "histogram", "points", "image", "table")
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


def read_run_json(folder: Path) -> dict[str, Any]:
    path = folder / RUN_JSON
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder: no such directory")
    if not path.is_file():
        raise RunFolderError(f"{folder} is not a run folder: it has no {RUN_JSON}")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is corrupt: {exc}") from exc
    if not isinstance(info, dict) or "method" not in info or "status" not in info:
        raise RunFolderError(f"{path} is corrupt: it lacks 'method' or 'status'")
    return info


def read_events(path: Path, offset: int = 0, warn: bool = True) -> tuple[list[dict], int]:
    """Events of ``events.jsonl`` from byte ``offset``; returns ``(events, next_offset)``.

    A last line without its newline is not consumed (``next_offset`` stops before it) so a
    reader tailing a live run picks it up once it is complete. Complete lines that are not a JSON
    object with a ``kind`` and a ``name`` are skipped with a warning.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events: list[dict] = []
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            event = None
        if not isinstance(event, dict) or "kind" not in event or "name" not in event:
            if warn:
                warnings.warn(f"{path}: skipping unreadable event line {raw[:80]!r}", RuntimeWarning, stacklevel=2)
            continue
        events.append(event)
    return events, offset + end
