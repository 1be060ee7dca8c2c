"""Reading a run folder as the server does: no symbolic link followed, no bad line or field fatal.

Every file the server reads inside a run folder is reached through core's
:class:`~nbdistill.core.runfolder.RunFolder` and opened with ``O_NOFOLLOW`` (a ``run.json``,
``events.jsonl`` or media file that is a link is refused with :class:`OutsideRoot`) and must be a
regular file (a folder or a FIFO named ``events.jsonl`` is :class:`Unreadable`). The run folder
itself is a real path checked by :func:`~.runindex.resolve_run`, so nothing outside the runs
root is read.

Lines of ``events.jsonl`` follow the one bad-line policy of :mod:`nbdistill.core.eventfile`
(``Run`` reads them the same way): a bad line or field is skipped and counted in ``skipped``,
never an error. The server reads them ``json_safe``: NaN, ±inf and ``1e999`` become ``None``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.eventfile import (
    MAX_LINE_BYTES,
    MAX_PAGE_BYTES,
    OutsideRoot,
    Page,
    Unreadable,
    clean_event,
    finite,
    is_number,
    open_regular,
    parse_event,
    parse_event_lines,
    read_page_from,
)
from ..core.runfolder import RUN_JSON, RunFolder

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_MEDIA_PATH",
    "MAX_NAME",
    "MAX_PAGE_BYTES",
    "MAX_RUN_JSON_BYTES",
    "MEDIA_TYPES",
    "BadOffset",
    "InvalidRunId",
    "OutsideRoot",
    "Page",
    "RunNotFound",
    "Unreadable",
    "clean_event",
    "finite",
    "is_number",
    "open_regular",
    "parse_event",
    "parse_event_lines",
    "media_path",
    "read_events_page",
    "read_info",
    "read_media",
    "read_page_from",
]

#: A ``run.json`` larger than this is not read (the run is listed as ``corrupt``).
MAX_RUN_JSON_BYTES = 16 << 20
#: Longest media path (``media/<path>``) a request may name, and longest component of it.
MAX_MEDIA_PATH = 1024
MAX_NAME = 255
#: Media files the server hands out (never SVG or HTML: they could run script in the page).
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


class InvalidRunId(ValueError):
    """The id is not a run id (``../x``, an absolute path, odd characters), or a media path is not one."""


class RunNotFound(LookupError):
    """No run folder with this id under the runs root."""


class BadOffset(ValueError):
    """An events offset past the end of ``events.jsonl``."""


def read_info(folder: Path) -> tuple[dict[str, Any], int]:
    """``run.json`` of ``folder`` and the number of its fields dropped for having the wrong type.

    Raises :class:`Unreadable` (the reason in the message) if it is not a JSON object with string
    ``method`` and ``status``, :class:`OutsideRoot` if it is a link, ``FileNotFoundError``."""
    data = RunFolder(folder).read_info_bytes(MAX_RUN_JSON_BYTES)
    if len(data) > MAX_RUN_JSON_BYTES:
        raise Unreadable(f"{RUN_JSON} of run {folder.name} is larger than {MAX_RUN_JSON_BYTES >> 20} MB")
    try:
        info = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"{RUN_JSON} of run {folder.name} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise Unreadable(f"{RUN_JSON} of run {folder.name} is not a JSON object")
    if not isinstance(info.get("method"), str) or not isinstance(info.get("status"), str):
        raise Unreadable(f"{RUN_JSON} of run {folder.name} lacks a string 'method' and 'status'")
    info = finite(info)
    dropped = 0
    for key in ("started", "ended", "heartbeat"):
        if info.get(key) is not None and not is_number(info[key]):
            info[key], dropped = None, dropped + 1
    for key in ("family", "error", "host"):
        if info.get(key) is not None and not isinstance(info[key], str):
            info[key], dropped = None, dropped + 1
    return info, dropped


def read_events_page(path: Path, offset: int, max_bytes: int = MAX_PAGE_BYTES) -> tuple[list[dict], int, int, int]:
    """``(events, next_offset, size, skipped)`` of ``events.jsonl`` at ``path`` from byte ``offset``.

    A missing file reads as empty; an offset past its end raises :class:`BadOffset`."""
    try:
        f = open_regular(path)
    except FileNotFoundError:
        if offset:
            raise BadOffset(f"offset {offset} is past the end of {path.name} (it is not there yet)") from None
        return [], 0, 0, 0
    with f:
        size = os.fstat(f.fileno()).st_size
        if offset > size:
            raise BadOffset(f"offset {offset} is past the end of {path.name} ({size} bytes)")
        page = read_page_from(f, offset, max_bytes)
    return page.events, page.offset, size, page.skipped


def media_path(folder: Path, relpath: str) -> Path:
    """The path of ``media/<relpath>`` inside the real run folder ``folder``, checked but not opened.

    Refuses (:class:`InvalidRunId`) a NUL, an over-long path or component and a type the server
    does not hand out, and (:class:`OutsideRoot`) a path that leaves ``media/`` or goes through
    a symbolic link (``media/`` itself included)."""
    if "\x00" in relpath or len(relpath) > MAX_MEDIA_PATH or any(len(p) > MAX_NAME for p in relpath.split("/")):
        raise InvalidRunId(
            f"{relpath[:80]!r} is not a media path (it holds a NUL byte, is longer than {MAX_MEDIA_PATH} characters "
            f"or has a name longer than {MAX_NAME})"
        )
    media = RunFolder(folder).media
    path = Path(os.path.normpath(media / relpath))
    if media not in path.parents:
        raise OutsideRoot(f"{relpath!r} resolves outside the run's media folder")
    if path.suffix.lower() not in MEDIA_TYPES:
        raise InvalidRunId(f"{relpath!r} is not an image this server hands out")
    if Path(os.path.realpath(path)) != path:
        raise OutsideRoot(f"{relpath!r} goes through a symbolic link; the server follows no link inside a run folder")
    return path


def read_media(folder: Path, relpath: str) -> tuple[bytes, str]:
    """``(bytes, content type)`` of ``media/<relpath>`` of the real run folder ``folder``."""
    path = media_path(folder, relpath)
    try:
        with open_regular(path) as f:
            return f.read(), MEDIA_TYPES[path.suffix.lower()]
    except FileNotFoundError:
        raise RunNotFound(f"no media file {relpath!r}") from None
