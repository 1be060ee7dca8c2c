"""Reading ``events.jsonl``: the one bad-line policy every reader shares (``Run``, the Jupyter server).

A line is parsed on its own and checked field by field:

- a line that is not JSON, not an object, or has no string ``kind`` and ``name`` is skipped;
- a ``step``/``epoch``/``time`` that is not a finite number (``"abc"``, ``1e999``, ``true``) is dropped;
- a scalar's ``value`` that is not a number (``"high"``, a list) becomes ``None``;
- a line longer than :data:`MAX_LINE_BYTES` is skipped unparsed once it ends;

each counted in ``skipped``, never an error. A last line without its newline is a line still being
written: it is left for the next read. NaN and ±inf (``NaN``, ``Infinity``, ``1e999``) are values (a
diverged loss), not bad fields: kept as floats, or, with ``json_safe`` (what the server sends: JSON
has none of them), replaced by ``None``. The count of skipped lines and fields is the same either way.

Files are opened with :func:`open_regular`: no symbolic link followed, nothing but a regular file read.
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

from .errors import RunFolderError

#: Largest slice of ``events.jsonl`` one read takes in at once (the server's events page).
MAX_PAGE_BYTES = 1 << 20
#: A line of ``events.jsonl`` longer than this is skipped (and counted), never parsed.
MAX_LINE_BYTES = 16 << 20


class OutsideRoot(PermissionError):
    """The path resolves outside the runs root (or outside its run folder), e.g. through a symlink."""


class Unreadable(RunFolderError):
    """A run file that is there but cannot be read as what it should be (a folder, not JSON, the wrong type)."""


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


_FLOAT_MAX = 2**1023
#: An exponent of three digits or more, or 309 digits in a row: how a JSON number can parse to ±inf (``1e999``).
_BIG_EXPONENT = re.compile(rb"[eE][+-]?\d{3}|\d{309}")
#: NaN, Infinity and -Infinity (which Python's encoder writes) read as ``None`` (``json_safe``).
_SAFE_DECODER = json.JSONDecoder(parse_constant=lambda _: None)
_DECODER = json.JSONDecoder()


def is_number(value: Any) -> bool:
    """A JSON number that is finite as a float (not a bool, not ``1e999``, not a 400-digit integer)."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    return kind is int and -_FLOAT_MAX < value < _FLOAT_MAX


def finite(obj: Any) -> Any:
    """``obj`` with NaN and ±inf replaced by ``None``: ``events.jsonl`` may hold them, JSON may not."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    return obj


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
        if value is not None and not is_number(value) and not isinstance(value, float):
            event["value"] = None  # ±inf and NaN are values (a diverged loss), not bad fields
            dropped += 1
    return event, dropped


def parse_event(raw: bytes, json_safe: bool = True) -> tuple[dict | None, int]:
    """One line of ``events.jsonl``: ``(event, fields dropped)``, or ``(None, 1)`` if it is no event.

    With ``json_safe``, NaN, ±Infinity and numbers too large for a float (``1e999``) become ``None``."""
    try:
        obj = (_SAFE_DECODER if json_safe else _DECODER).decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, 1
    if json_safe and _BIG_EXPONENT.search(raw):
        obj = finite(obj)
    return clean_event(obj)


def parse_event_lines(data: bytes, json_safe: bool = True) -> tuple[list[dict], int]:
    """The events in complete lines ``data`` and the count of lines and fields skipped."""
    events, skipped = [], 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        event, dropped = parse_event(raw, json_safe)
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


def read_page_from(f: IO[bytes], offset: int, max_bytes: int = MAX_PAGE_BYTES, scanned: int = 0, json_safe: bool = True) -> Page:
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
            events, skipped = parse_event_lines(data[:end], json_safe)
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
    events, skipped = parse_event_lines(f.read(end - offset), json_safe)
    return Page(events, end, end, skipped)


def read_all_from(f: IO[bytes], offset: int = 0, json_safe: bool = False) -> Page:
    """Every complete line of the open ``events.jsonl`` ``f`` from byte ``offset``, page by page."""
    size = os.fstat(f.fileno()).st_size
    events: list[dict] = []
    skipped, scanned = 0, offset
    while max(offset, scanned) < size:
        page = read_page_from(f, offset, MAX_PAGE_BYTES, scanned, json_safe)
        events += page.events
        skipped += page.skipped
        progressed = page.offset != offset
        offset, scanned = page.offset, page.scanned
        if not progressed:  # only a half-written last line is left
            break
    return Page(events, offset, max(offset, scanned), skipped)
