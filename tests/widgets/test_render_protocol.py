"""The drawing worker's frames: round trips, a frame cut short, a frame over the size limit."""

from __future__ import annotations

import io
import os
import struct

import pytest

from nbdistill.widgets.render import protocol


def pipe_with(data: bytes, close: bool = True):
    """A pipe's read end holding ``data`` (its write end closed when ``close``)."""
    r, w = os.pipe()
    os.write(w, data)
    if close:
        os.close(w)
        w = None
    return os.fdopen(r, "rb", buffering=0), w


def test_a_request_round_trips_through_its_frame():
    message = {"op": protocol.DRAW, "events": [{"kind": "scalar", "name": "train/loss", "value": 0.5}], "title": "t"}
    stream = io.BytesIO(protocol.encode(message) + protocol.encode({"op": protocol.RESET, "views": ["losses"]}))
    assert protocol.read_message(stream) == message
    assert protocol.read_message(stream) == {"op": protocol.RESET, "views": ["losses"]}
    assert protocol.read_message(stream) is None  # a clean end of input


def test_numpy_values_and_non_finite_numbers_travel():
    np = pytest.importorskip("numpy")
    stream = io.BytesIO(protocol.encode({"x": np.arange(3), "y": float("nan")}))
    message = protocol.read_message(stream)
    assert message["x"] == [0, 1, 2] and message["y"] != message["y"]


@pytest.mark.parametrize("kind", protocol.REPLY_KINDS)
def test_a_reply_round_trips_through_a_pipe(kind):
    payload = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 100
    stream, _ = pipe_with(protocol.reply(kind, payload))
    with stream:
        assert protocol.read_reply(stream, 5.0, 5.0) == (kind, payload)


def test_an_empty_payload_round_trips():
    stream, _ = pipe_with(protocol.reply(protocol.ERROR, b""))
    with stream:
        assert protocol.read_reply(stream, 5.0, 5.0) == (protocol.ERROR, b"")


def test_a_truncated_frame_is_an_eof_error_not_a_short_message():
    whole = protocol.encode({"op": protocol.DRAW, "events": []})
    with pytest.raises(EOFError, match="cut short"):
        protocol.read_message(io.BytesIO(whole[:-3]))
    with pytest.raises(EOFError, match="header was cut short"):
        protocol.read_message(io.BytesIO(whole[:2]))
    stream, _ = pipe_with(protocol.reply(protocol.PNG, b"0123456789")[:-4])  # the worker died mid-answer
    with stream, pytest.raises(EOFError):
        protocol.read_reply(stream, 5.0, 5.0)


def test_a_silent_worker_times_out():
    stream, w = pipe_with(protocol.PNG + struct.pack(">I", 10) + b"01234", close=False)  # half an answer, then nothing
    try:
        with stream, pytest.raises(TimeoutError, match="no answer from the drawing worker"):
            protocol.read_reply(stream, 5.0, 0.05)
    finally:
        os.close(w)


def test_an_oversized_frame_is_refused_both_ways(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_FRAME", 64)
    with pytest.raises(protocol.ProtocolError, match="over the 64-byte limit"):
        protocol.frame(b"x" * 65)
    assert protocol.frame(b"x" * 64)[:4] == struct.pack(">I", 64)
    announced = struct.pack(">I", 1_000_000) + b"x" * 10  # a corrupted length: never read, never allocated
    with pytest.raises(protocol.ProtocolError, match="announces 1000000 bytes"):
        protocol.read_message(io.BytesIO(announced))
    stream, _ = pipe_with(protocol.PNG + announced)
    with stream, pytest.raises(protocol.ProtocolError, match="announces"):
        protocol.read_reply(stream, 5.0, 5.0)


def test_an_unknown_reply_kind_is_refused():
    with pytest.raises(protocol.ProtocolError, match="unknown reply kind"):
        protocol.reply(b"Z", b"")
    stream, _ = pipe_with(b"Z" + struct.pack(">I", 0))
    with stream, pytest.raises(protocol.ProtocolError, match="unknown reply kind"):
        protocol.read_reply(stream, 5.0, 5.0)
