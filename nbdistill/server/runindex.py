"""The runs root as the Jupyter server sees it: safe run lookup, run summaries, paged event reads.

Everything here is plain Python on the run folder (see :mod:`nbdistill.core.runfolder`); the HTTP
layer is :mod:`.handlers`. A :class:`RunIndex` tails each run's ``events.jsonl`` incrementally, so
listing the runs every second costs only the bytes written since the last listing.
"""
from __future__ import annotations

import json
import math
import os
import platform
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import RunFolderError
from ..core.runfolder import EVENTS, MEDIA, RUN_JSON, STOP_REQUEST, is_valid_run_id, read_run_json

#: Largest slice of ``events.jsonl`` one events request returns; the client asks again for the rest.
MAX_PAGE_BYTES = 1 << 20
#: A sparkline keeps between ``SPARK_POINTS`` and ``2 * SPARK_POINTS`` bin means.
SPARK_POINTS = 32
#: Media files the server hands out (never SVG or HTML: they could run script in the page).
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


class InvalidRunId(ValueError):
    """The id is not a run id (``../x``, an absolute path, odd characters)."""


class OutsideRoot(PermissionError):
    """The path resolves outside the runs root (or outside its run folder), e.g. through a symlink."""


class RunNotFound(LookupError):
    """No run folder with this id under the runs root."""


def resolve_run(root: Path, run_id: str) -> Path:
    """The real path of run ``run_id`` under ``root``; refuses anything that would leave ``root``."""
    if not is_valid_run_id(run_id):
        raise InvalidRunId(f"{run_id!r} is not a run id")
    base = root.resolve()
    folder = (base / run_id).resolve()
    if folder.parent != base:
        raise OutsideRoot(f"run {run_id!r} resolves outside the runs root")
    if not (folder / RUN_JSON).is_file():
        raise RunNotFound(f"no run {run_id!r} under {base}")
    return folder


def resolve_media(folder: Path, relpath: str) -> Path:
    """The real path of ``media/<relpath>`` inside run ``folder`` (a served image type only)."""
    media = (folder / MEDIA).resolve()
    path = (media / relpath).resolve()
    if media not in path.parents:
        raise OutsideRoot(f"{relpath!r} resolves outside the run's media folder")
    if path.suffix.lower() not in MEDIA_TYPES:
        raise InvalidRunId(f"{relpath!r} is not an image this server hands out")
    if not path.is_file():
        raise RunNotFound(f"no media file {relpath!r}")
    return path


def finite(obj: Any) -> Any:
    """``obj`` with NaN and ±inf replaced by ``None``: ``events.jsonl`` may hold them, JSON may not."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    return obj


def parse_event_lines(data: bytes) -> list[dict]:
    """The events in complete lines ``data``; lines that are not an event object are skipped."""
    events = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, dict) and "kind" in event and "name" in event:
            events.append(finite(event) if (b"NaN" in raw or b"Infinity" in raw) else event)
    return events


def read_events_page(path: Path, offset: int, max_bytes: int = MAX_PAGE_BYTES) -> tuple[list[dict], int, int]:
    """Events of ``path`` from byte ``offset``, at most about ``max_bytes`` of them.

    Returns ``(events, next_offset, size)``. Like :func:`nbdistill.core.runfolder.read_events`, a
    half-written last line is left for the next read; a single line longer than ``max_bytes`` is
    still returned whole.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            data = f.read(max_bytes)
            if len(data) == max_bytes and b"\n" not in data:
                data += f.readline()
    except FileNotFoundError:
        return [], offset, 0
    end = data.rfind(b"\n") + 1
    return parse_event_lines(data[:end]), offset + end, size


def process_alive(info: dict[str, Any]) -> bool | None:
    """Whether the process that writes a run is alive; ``None`` when it runs on another host."""
    pid, host = info.get("pid"), info.get("host")
    if not isinstance(pid, int) or (host and host != platform.node()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Decimator:
    """Bin means of a stream of ``(step, value)``, between ``size`` and ``2 * size`` of them, in O(size) memory."""

    def __init__(self, size: int = SPARK_POINTS):
        self.size = size
        self.stride = 1
        self.points: list[tuple[float, float]] = []
        self._sum = [0.0, 0.0, 0]

    def add(self, step: float, value: float) -> None:
        if value is None or not math.isfinite(value):
            return
        acc = self._sum
        acc[0] += step
        acc[1] += value
        acc[2] += 1
        if acc[2] < self.stride:
            return
        self.points.append((acc[0] / acc[2], acc[1] / acc[2]))
        self._sum = [0.0, 0.0, 0]
        if len(self.points) >= 2 * self.size:
            pairs = zip(self.points[0::2], self.points[1::2])
            self.points = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in pairs]
            self.stride *= 2

    def values(self) -> list[float]:
        out = [v for _, v in self.points]
        if self._sum[2]:
            out.append(self._sum[1] / self._sum[2])
        return out


def main_loss(names: list[str]) -> str | None:
    """The scalar a sparkline shows: ``train/loss``, else the first ``train/*``, else the first scalar."""
    if "train/loss" in names:
        return "train/loss"
    train = [n for n in names if n.startswith("train/")]
    return (train or names or [None])[0]


@dataclass
class _Tail:
    """What the index remembers of one run's events between listings."""

    offset: int = 0
    inode: int | None = None
    info: dict[str, Any] | None = None
    info_stamp: tuple[int, int] | None = None
    step: int = 0
    epoch: int = 0
    time: float | None = None
    count: int = 0
    last: dict[str, float | None] = field(default_factory=dict)
    series: dict[str, Decimator] = field(default_factory=dict)

    def feed(self, events: list[dict]) -> None:
        for e in events:
            self.count += 1
            self.step = e.get("step", self.step)
            self.epoch = e.get("epoch", self.epoch)
            self.time = e.get("time", self.time)
            if e.get("kind") == "scalar":
                name, value = e["name"], e.get("value")
                self.last[name] = value
                if isinstance(value, (int, float)):
                    self.series.setdefault(name, Decimator()).add(float(e.get("step") or 0), float(value))


class RunIndex:
    """Summaries of every run under ``root``, kept current by tailing each ``events.jsonl``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._tails: dict[str, _Tail] = {}
        self._lock = threading.Lock()

    def run_folders(self) -> list[Path]:
        """Every run folder directly under the root whose real path is also directly under it."""
        base = self.root.resolve()
        if not base.is_dir():
            return []
        found = []
        for child in base.iterdir():
            if is_valid_run_id(child.name) and (child / RUN_JSON).is_file() and child.resolve().parent == base:
                found.append(child)
        return found

    def summaries(self) -> list[dict[str, Any]]:
        """Every readable run, newest first."""
        with self._lock:
            folders = self.run_folders()
            names = {f.name for f in folders}
            for gone in set(self._tails) - names:
                del self._tails[gone]
            runs = []
            for folder in folders:
                try:
                    runs.append(self._summary(folder))
                except RunFolderError:
                    continue
        return sorted(runs, key=lambda r: (r.get("started") or 0, r["id"]), reverse=True)

    def summary(self, folder: Path) -> dict[str, Any]:
        with self._lock:
            return self._summary(folder)

    def _summary(self, folder: Path) -> dict[str, Any]:
        tail = self._tail(folder)
        try:
            st = (folder / RUN_JSON).stat()
        except FileNotFoundError:
            raise RunFolderError(f"{folder} has no {RUN_JSON}") from None
        if tail.info is None or tail.info_stamp != (st.st_ino, st.st_mtime_ns):
            tail.info, tail.info_stamp = read_run_json(folder), (st.st_ino, st.st_mtime_ns)
        info = tail.info
        names = list(tail.last)
        main = main_loss(names)
        status = info.get("status")
        return finite({
            "id": folder.name,
            "family": info.get("family") or str(info.get("method", "")).split(".")[0],
            "method": info.get("method"),
            "status": status,
            "error": info.get("error"),
            "started": info.get("started"),
            "ended": info.get("ended"),
            "alive": process_alive(info) if status == "running" else None,
            "stop_requested": (folder / STOP_REQUEST).exists(),
            "step": tail.step,
            "epoch": tail.epoch,
            "updated": tail.time,
            "events": tail.count,
            "metrics": tail.last,
            "main": main,
            "spark": tail.series[main].values() if main in tail.series else [],
        })

    def _tail(self, folder: Path) -> _Tail:
        path = folder / EVENTS
        try:
            st = path.stat()
        except FileNotFoundError:
            return self._tails.setdefault(folder.name, _Tail())
        tail = self._tails.get(folder.name)
        if tail is None or tail.inode != st.st_ino or st.st_size < tail.offset:
            tail = self._tails[folder.name] = _Tail(inode=st.st_ino)
        while tail.offset < st.st_size:
            events, offset, _ = read_events_page(path, tail.offset)
            if offset == tail.offset:
                break
            tail.feed(events)
            tail.offset = offset
        return tail
