"""The run folder: the one contract between training and every view.

A run is a folder ``<runs root>/<run id>/`` holding

- ``run.json``: family, method, hyper-parameters, status (``running``, ``finished``, ``stopped``,
  ``failed`` with ``error``), ``started``/``ended`` times (Unix seconds), versions;
- ``events.jsonl``: append-only, one JSON object a line,
  ``{"step", "epoch", "time", "kind", "name", ...}`` where ``kind`` is ``scalar`` (``value``),
  ``histogram`` (``edges``, ``counts``), ``points`` (``x``, ``y``, optional ``label``),
  ``image`` (``path`` under ``media/``) or ``table`` (``columns``, ``rows``);
- ``checkpoints/``: Lightning checkpoints (``last.ckpt``), from which a stopped run resumes;
- ``stop-request``: present when someone (a panel, the JupyterLab sidebar) asks the run to stop.

The runs root is ``$NBDISTILL_RUNS`` or ``./nbdistill-runs``. Readers tolerate a half-written last
line (it is left for the next read) and skip garbage lines with a warning.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .errors import RunFolderError

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


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, default=_json_default)
    os.replace(tmp, path)


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
    for lineno, raw in enumerate(data[:end].splitlines()):
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
