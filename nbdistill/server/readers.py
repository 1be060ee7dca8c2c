"""Reading a run folder as the server does: no symbolic link followed, no bad line or field fatal.

Every file the server reads inside a run folder is opened with ``O_NOFOLLOW`` (a ``run.json``,
``events.jsonl`` or media file that is a link is refused with :class:`OutsideRoot`) and must be a
regular file (a folder or a FIFO named ``events.jsonl`` is :class:`Unreadable`). The run folder
itself is a real path checked by :func:`~.runindex.resolve_run`, so nothing outside the runs
root is read.

Lines of ``events.jsonl`` are checked field by field: a line that is not an event object (no
string ``kind`` and ``name``) is skipped, a ``step``/``epoch``/``time`` that is not a finite number
is dropped, a scalar's ``value`` that is not a number becomes ``None``; each is counted in
``skipped``, never an error. NaN, ±inf and ``1e999`` become ``None`` (JSON has none of them).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import RunFolderError
from ..core.runfolder import MEDIA, RUN_JSON

#: Largest slice of ``events.jsonl`` one events request returns; the client asks again for the rest.
MAX_PAGE_BYTES = 1 << 20
#: A line of ``events.jsonl`` longer than this is skipped (and counted), never parsed.
MAX_LINE_BYTES = 16 << 20
#: A ``run.json`` larger than this is not read (the run is listed as ``corrupt``).
MAX_RUN_JSON_BYTES = 16 << 20
#: Longest media path (``media/<path>``) a request may name, and longest component of it.
MAX_MEDIA_PATH = 1024
MAX_NAME = 255
#: Media files the server hands out (never SVG or HTML: they could run script in the page).
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


class InvalidRunId(ValueError):
    """The id is not a run id (``../x``, an absolute path, odd characters), or a media path is not one."""


class OutsideRoot(PermissionError):
    """The path resolves outside the runs root (or outside its run folder), e.g. through a symlink."""


class RunNotFound(LookupError):
    """No run folder with this id under the runs root."""


class Unreadable(RunFolderError):
    """A run file that is there but cannot be read as what it should be (a folder, not JSON, the wrong type)."""


class BadOffset(ValueError):
    """An events offset past the end of ``events.jsonl``."""


def open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for binary reading, refusing a symbolic link and anything but a regular file.

    Raises ``FileNotFoundError`` if it is not there, :class:`OutsideRoot` for a link and
    :class:`Unreadable` for a folder, a device, a FIFO or a file that cannot be opened."""
    where = f"{path.name} of run {path.parent.name}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutsideRoot(f"{where} is a symbolic link; the server follows no link inside a run folder") from None
        raise Unreadable(f"cannot open {where}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise Unreadable(f"{where} is {kind}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_number(value: Any) -> bool:
    """A JSON number that is finite as a float (not a bool, not ``1e999``, not a 400-digit integer)."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    return kind is int and -_FLOAT_MAX < value < _FLOAT_MAX


_FLOAT_MAX = 2**1023
#: An exponent of three digits or more, or 309 digits in a row: how a JSON number can parse to ±inf (``1e999``).
_BIG_EXPONENT = re.compile(rb"[eE][+-]?\d{3}|\d{309}")
#: NaN, Infinity and -Infinity (which Python's encoder writes) read as ``None``.
_DECODER = json.JSONDecoder(parse_constant=lambda _: None)


def finite(obj: Any) -> Any:
    """``obj`` with NaN and ±inf replaced by ``None``: ``events.jsonl`` may hold them, JSON may not."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    return obj


def read_info(folder: Path) -> tuple[dict[str, Any], int]:
    """``run.json`` of ``folder`` and the number of its fields dropped for having the wrong type.

    Raises :class:`Unreadable` (the reason in the message) if it is not a JSON object with string
    ``method`` and ``status``, :class:`OutsideRoot` if it is a link, ``FileNotFoundError``."""
    with open_regular(folder / RUN_JSON) as f:
        data = f.read(MAX_RUN_JSON_BYTES + 1)
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


def clean_event(event: Any) -> tuple[dict | None, int]:
    """``(event, fields dropped)`` with its bad fields dropped, or ``(None, 1)`` if it is no event."""
    if not isinstance(event, dict) or not isinstance(event.get("kind"), str) or not isinstance(event.get("name"), str):
        return None, 1
    dropped = 0
    for key in ("step", "epoch", "time"):
        if key in event and not is_number(event[key]):
            del event[key]
            dropped += 1
    if event["kind"] == "scalar":
        value = event.get("value")
        if value is not None and not is_number(value):
            if not isinstance(value, float):  # ±inf is a value (a diverged loss), not a bad field
                dropped += 1
            event["value"] = None
    return event, dropped


def parse_event(raw: bytes) -> tuple[dict | None, int]:
    """One line of ``events.jsonl``: ``(event, fields dropped)``, or ``(None, 1)`` if it is no event.

    NaN, ±Infinity and numbers too large for a float (``1e999``) become ``None``."""
    try:
        obj = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, 1
    if _BIG_EXPONENT.search(raw):
        obj = finite(obj)
    return clean_event(obj)


def parse_event_lines(data: bytes) -> tuple[list[dict], int]:
    """The events in complete lines ``data`` and the count of lines and fields skipped."""
    events, skipped = [], 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        event, dropped = parse_event(raw)
        skipped += dropped
        if event is not None:
            events.append(event)
    return events, skipped


@dataclass(frozen=True)
class Page:
    """What one read of ``events.jsonl`` found.

    ``offset`` is where the next read starts (after the last complete line); the bytes from
    ``offset`` to ``scanned`` are known to hold no newline (a line still being written), so the
    next read need look for one only after ``scanned``."""

    events: list[dict]
    offset: int
    scanned: int
    skipped: int


def _find_newline(f: IO[bytes], start: int) -> tuple[int | None, int]:
    """Position of the first newline at or after ``start`` (``None`` if none) and how far was looked."""
    f.seek(start)
    pos = start
    while True:
        chunk = f.read(MAX_PAGE_BYTES)
        if not chunk:
            return None, pos
        at = chunk.find(b"\n")
        if at >= 0:
            return pos + at, pos + at
        pos += len(chunk)


def read_page_from(f: IO[bytes], offset: int, max_bytes: int = MAX_PAGE_BYTES, scanned: int = 0) -> Page:
    """Events of the open ``events.jsonl`` ``f`` from byte ``offset``, about ``max_bytes`` of them.

    A half-written last line is left for the next read (``scanned`` remembers how far it was
    looked at, so a long one is not read again until it grows); a line longer than ``max_bytes``
    is returned whole, one longer than :data:`MAX_LINE_BYTES` is skipped once it ends."""
    start = max(offset, scanned)
    if start == offset:
        f.seek(offset)
        data = f.read(max_bytes)
        end = data.rfind(b"\n") + 1
        if end:
            events, skipped = parse_event_lines(data[:end])
            return Page(events, offset + end, offset + end, skipped)
        if len(data) < max_bytes:
            return Page([], offset, offset + len(data), 0)
        start = offset + len(data)
    newline, looked = _find_newline(f, start)
    if newline is None:
        return Page([], offset, looked, 0)
    end = newline + 1
    if end - offset > MAX_LINE_BYTES:
        return Page([], end, end, 1)
    f.seek(offset)
    events, skipped = parse_event_lines(f.read(end - offset))
    return Page(events, end, end, skipped)


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
    media = folder / MEDIA
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
