"""The drawing worker's wire protocol: length-prefixed frames over a pipe, and the message kinds.

A frame is a 4-byte big-endian payload length, then the payload. The parent sends requests as
JSON frames (``{"op": "reset", "views", "modules", "figsize", "dpi"}`` and ``{"op": "draw",
"events", "title", "fit"}``); the worker answers each draw with one reply byte and a frame:
:data:`PNG` (the image follows), :data:`ERROR` (a view raised; its traceback follows) or
:data:`UNAVAILABLE` (a view module would not import there; the parent then draws locally).

Frames larger than :data:`MAX_FRAME` are refused both ways (:class:`ProtocolError`), so that a
corrupted length never makes a reader wait for, or allocate, gigabytes.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, BinaryIO

#: Request ops.
RESET, DRAW = "reset", "draw"
#: Reply kinds, one byte before the reply's frame.
PNG, ERROR, UNAVAILABLE = b"P", b"E", b"I"
REPLY_KINDS = (PNG, ERROR, UNAVAILABLE)
#: Largest payload of one frame (a long run's first draw sends all its events at once).
MAX_FRAME = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")


class ProtocolError(OSError):
    """A frame that breaks the protocol: too large, or an unknown reply kind."""


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(payload)) + payload


def encode(message: dict[str, Any]) -> bytes:
    """A request as one JSON frame (numpy values become lists, anything else its repr)."""
    return frame(json.dumps(message, default=_jsonable, allow_nan=True).encode())


def reply(kind: bytes, payload: bytes) -> bytes:
    """A worker's answer: the kind byte, then the payload's frame."""
    if kind not in REPLY_KINDS:
        raise ProtocolError(f"unknown reply kind {kind!r}")
    return kind + frame(payload)


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next request from a blocking stream (the worker's stdin); ``None`` at a clean end of input.

    A frame cut short (the parent died mid-write) raises :class:`EOFError`."""
    head = stream.read(_HEADER.size)
    if not head:
        return None
    size = _size(head)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError(f"a frame was cut short: {len(payload)} of {size} bytes")
    return json.loads(payload)


def read_reply(stream: BinaryIO, first_timeout: float, timeout: float) -> tuple[bytes, bytes]:
    """The worker's next answer, ``(kind, payload)``, read from its stdout pipe.

    ``first_timeout`` bounds the wait for the answer to begin (the worker may still be drawing),
    ``timeout`` each later read. Raises :class:`TimeoutError`, :class:`EOFError` (the pipe closed,
    also mid-frame) or :class:`ProtocolError`."""
    kind = read_exact(stream, 1, first_timeout)
    if kind not in REPLY_KINDS:
        raise ProtocolError(f"unknown reply kind {kind!r} from the drawing worker")
    size = _size(read_exact(stream, _HEADER.size, timeout))
    return kind, read_exact(stream, size, timeout)


def read_exact(stream: BinaryIO, size: int, timeout: float) -> bytes:
    """``size`` bytes from a pipe; EOFError if it closes, TimeoutError if nothing comes for ``timeout`` s."""
    chunks, left = [], size
    while left:
        if os.name == "posix":
            import select

            ready, _, _ = select.select([stream], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no answer from the drawing worker in {timeout:.0f} s")
        chunk = os.read(stream.fileno(), left)
        if not chunk:
            raise EOFError("the drawing worker closed its output")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _size(head: bytes) -> int:
    if len(head) < _HEADER.size:
        raise EOFError(f"a frame header was cut short: {len(head)} of {_HEADER.size} bytes")
    (size,) = _HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame announces {size} bytes, over the {MAX_FRAME}-byte limit")
    return size


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)
