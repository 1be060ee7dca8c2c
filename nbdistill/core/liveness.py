"""Who writes a run, and whether that writer is still there: the one liveness rule.

A run has at most one writer. While it trains, the writer holds an exclusive ``flock`` on the run
folder's ``writer.lock`` file (so a second writer, in this process or another, is refused) and
records in ``run.json`` its ``pid``, its ``host`` and a ``heartbeat`` (Unix seconds, refreshed at
least every :data:`HEARTBEAT_EVERY` seconds while it writes).

Every reader (``nd.runs``, :class:`~nbdistill.core.run.Run`, the CLI, the Jupyter server) asks
:func:`effective_status`: a run whose ``run.json`` says ``running`` but whose writer is gone is
``lost``. On the writer's own host "gone" means nobody holds the lock (the kernel drops an
``flock`` when its process dies, even by ``kill -9``) and, for a run folder written before the
lock existed, that its pid is no longer alive. On another host (a shared file system) it means a
heartbeat older than :data:`STALE_AFTER` seconds.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError, RunFolderError
from .runfolder import RunFolder

#: Seconds between heartbeats a writer records in ``run.json`` while it trains.
HEARTBEAT_EVERY = 10.0
#: A heartbeat older than this (seconds) on another host means the writer is gone.
STALE_AFTER = 120.0
#: Attempts (20 ms apart) to take a writer lock that a reader may be probing at that instant.
LOCK_TRIES = 10


class RunLocked(ConfigError):
    """Another writer (another ``nd.fit``, ``nd.resume`` or ``nbdistill fit``) holds this run folder."""


def this_host() -> str:
    return platform.node()


def acquire_writer_lock(folder: Path) -> int:
    """Take the run folder's writer lock for this process; returns the file descriptor to keep open.

    Raises :class:`RunLocked` naming the holder (from ``run.json``) if another writer has it.
    Release with :func:`release_writer_lock` (or let the process end: the kernel releases it).
    """
    path = RunFolder(folder).lock_file
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    # a reader (lock_held) holds a shared lock for a few microseconds: a writer retries briefly
    # before concluding that another writer has the run
    for attempt in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if attempt + 1 < LOCK_TRIES:
            time.sleep(0.02)
    os.close(fd)
    raise RunLocked(
        f"run {Path(folder).name} is being written by another process or training right now ({Path(folder)}{_holder(folder)}); "
        "wait for it to end, or stop it (nd.runs.open(...).request_stop()) and then resume it"
    )


def _holder(folder: Path) -> str:
    """``, pid N on host H`` from ``run.json``, or nothing when it cannot be read."""
    try:
        info = json.loads(RunFolder(folder).read_info_bytes())
        pid, host = info.get("pid"), info.get("host")
    except (OSError, ValueError, AttributeError, RunFolderError):
        return ""
    return f", pid {pid} on host {host}" if isinstance(pid, int) and isinstance(host, str) else ""


def release_writer_lock(fd: int | None) -> None:
    if fd is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_held(folder: Path) -> bool | None:
    """Whether some process holds ``folder``'s writer lock; ``None`` if there is no lock file."""
    path = RunFolder(folder).lock_file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def pid_alive(pid: Any) -> bool | None:
    """Whether process ``pid`` exists on this host; ``None`` when ``pid`` is not a usable pid."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**22:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return None
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def writer_alive(folder: Path, info: dict[str, Any], now: float | None = None) -> bool | None:
    """Whether the writer of a ``running`` run is still there (see the module docstring).

    ``None`` when it cannot be told (another host without a heartbeat)."""
    host = info.get("host")
    if not host or host == this_host():
        held = lock_held(folder)
        if held is not None:
            return held
        return pid_alive(info.get("pid"))
    beat = _number(info.get("heartbeat"))
    if beat is None:
        return None
    return (time.time() if now is None else now) - beat < STALE_AFTER


def effective_status(folder: Path, info: dict[str, Any]) -> str:
    """``run.json``'s status, except ``lost`` for a ``running`` run whose writer is gone."""
    status = info.get("status")
    if status == "running" and writer_alive(folder, info) is False:
        return "lost"
    return status if isinstance(status, str) else "corrupt"
