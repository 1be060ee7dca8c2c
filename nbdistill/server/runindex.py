"""The runs root as the Jupyter server sees it: safe run lookup, run summaries, incremental event tails.

Everything here is plain Python on the run folder (see :mod:`nbdistill.core.runfolder`; the
files are opened by :mod:`.readers`, which follows no link and skips bad lines); the HTTP layer is
:mod:`.handlers`. A :class:`RunIndex` tails each run's ``events.jsonl`` incrementally, so listing
the runs every second costs only the bytes written since the last listing.

No request waits for another's read: each run's tail has its own lock, taken without waiting.
A request that finds a run being read by another answers from that run's last published summary,
which the reader refreshes after every page it reads. A request reads at most
:data:`SYNC_BYTES` of a run's new events itself; a bigger backlog (a 50 MB run seen for the first
time) is read on by one background thread, and summaries say ``partial`` until it is done. An
unterminated last line is looked at once: only bytes written after it are read on later polls.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.liveness import effective_status, writer_alive
from ..core.runfolder import RUN_JSON, RunFolder, is_valid_run_id
from .readers import (
    MAX_PAGE_BYTES,
    MEDIA_TYPES,
    InvalidRunId,
    OutsideRoot,
    RunNotFound,
    Unreadable,
    finite,
    is_number,
    open_regular,
    read_info,
    read_page_from,
)

__all__ = [
    "MAX_PAGE_BYTES",
    "MEDIA_TYPES",
    "SPARK_POINTS",
    "Decimator",
    "InvalidRunId",
    "OutsideRoot",
    "RunIndex",
    "RunNotFound",
    "main_loss",
    "resolve_run",
]

#: New bytes of one run's ``events.jsonl`` a request reads itself; a larger backlog is read in the background.
SYNC_BYTES = 8 << 20
#: A sparkline keeps between ``SPARK_POINTS`` and ``2 * SPARK_POINTS`` bin means.
SPARK_POINTS = 32
#: The status of a run whose ``run.json`` or ``events.jsonl`` cannot be read (the reason is its ``error``).
CORRUPT = "corrupt"


def resolve_run(root: Path, run_id: str) -> Path:
    """The real path of run ``run_id`` under ``root``; refuses anything that would leave ``root``."""
    if not is_valid_run_id(run_id):
        raise InvalidRunId(f"{run_id!r} is not a run id")
    base = root.resolve()
    folder = (base / run_id).resolve()
    if folder.parent != base:
        raise OutsideRoot(f"run {run_id!r} resolves outside the runs root")
    if not RunFolder(folder).has_info:
        raise RunNotFound(f"no run {run_id!r} under {base}")
    return folder


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


def _empty_events_summary() -> dict[str, Any]:
    return {
        "step": 0,
        "epoch": 0,
        "updated": None,
        "events": 0,
        "skipped": 0,
        "metrics": {},
        "main": None,
        "spark": [],
        "partial": False,
    }


@dataclass
class _Tail:
    """What the index remembers of one run's events between listings.

    Mutated only by the thread holding ``lock``; others read ``published`` (a dict replaced whole
    after each page, never mutated) and ``problem``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    offset: int = 0
    scanned: int = 0
    inode: int | None = None
    step: float = 0
    epoch: float = 0
    time: float | None = None
    count: int = 0
    skipped: int = 0
    last: dict[str, float | None] = field(default_factory=dict)
    series: dict[str, Decimator] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=_empty_events_summary)
    problem: str | None = None
    info: tuple[dict[str, Any], int] | None = None
    info_stamp: tuple[int, int, int] | None = None

    def reset(self, inode: int | None) -> None:
        fresh = _Tail(lock=self.lock, inode=inode, info=self.info, info_stamp=self.info_stamp)
        self.__dict__.update(fresh.__dict__)

    def feed(self, events: list[dict], skipped: int) -> None:
        """Take in parsed events (already checked by :func:`~.readers.clean_event`)."""
        self.skipped += skipped
        for e in events:
            self.count += 1
            self.step = e.get("step", self.step)
            self.epoch = e.get("epoch", self.epoch)
            self.time = e.get("time", self.time)
            if e["kind"] == "scalar":
                name, value = e["name"], e.get("value")
                self.last[name] = value
                if value is not None:
                    self.series.setdefault(name, Decimator()).add(float(e.get("step", 0)), float(value))

    def publish(self) -> None:
        main = main_loss(list(self.last))
        self.published = {
            "step": self.step,
            "epoch": self.epoch,
            "updated": self.time,
            "events": self.count,
            "skipped": self.skipped,
            "metrics": dict(self.last),
            "main": main,
            "spark": self.series[main].values() if main in self.series else [],
        }


class RunIndex:
    """Summaries of every run under ``root``, kept current by tailing each ``events.jsonl``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._tails: dict[str, _Tail] = {}
        self._tails_lock = threading.Lock()  # guards the dict only, never held while reading a file
        self._catchup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbdistill-catchup")

    def run_folders(self) -> list[Path]:
        """Every folder directly under the root (with a run id for a name) whose real path is also directly under it.

        Whether it holds a ``run.json`` is for the summary to find (one ``lstat``; listing 200 runs
        every second should cost few system calls)."""
        base = self.root.resolve()
        found = []
        try:
            with os.scandir(base) as entries:
                for entry in entries:
                    if not is_valid_run_id(entry.name):
                        continue
                    if entry.is_symlink():
                        real = Path(entry.path).resolve()
                        if real.parent != base or not real.is_dir():
                            continue
                    elif not entry.is_dir(follow_symlinks=False):
                        continue
                    found.append(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return found

    def summaries(self) -> list[dict[str, Any]]:
        """Every run, newest first; one that cannot be read is listed as ``corrupt`` with the reason."""
        folders = self.run_folders()
        names = {f.name for f in folders}
        with self._tails_lock:
            for gone in set(self._tails) - names:
                del self._tails[gone]
        runs = []
        for folder in folders:
            try:
                runs.append(self.summary(folder))
            except FileNotFoundError:  # a folder without run.json is not a run
                continue
        return sorted(runs, key=lambda r: (r["started"] if is_number(r["started"]) else 0, r["id"]), reverse=True)

    def summary(self, folder: Path) -> dict[str, Any]:
        """The summary of one run; a bad run is ``corrupt``, with the reason (``FileNotFoundError`` if no ``run.json``)."""
        return self.run_info(folder)[1]

    def run_info(self, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(run.json, summary)`` of the run in ``folder`` (``run.json`` is ``{}`` for a corrupt run).

        Raises ``FileNotFoundError`` if ``folder`` has no ``run.json`` (it is not a run)."""
        tail = self._tail(folder.name)
        try:
            info, dropped = self._info(folder, tail)
        except FileNotFoundError:
            raise
        except (Unreadable, OutsideRoot, OSError) as exc:
            return {}, self._corrupt(folder, _reason(exc, folder))
        events = self._events(folder, tail)
        if tail.problem:
            return info, self._corrupt(folder, tail.problem, info)
        status = effective_status(folder, info)
        return info, finite(
            {
                "id": folder.name,
                "family": info.get("family") or info["method"].split(".")[0],
                "method": info["method"],
                "status": status,
                "error": info.get("error"),
                "started": info.get("started"),
                "ended": info.get("ended"),
                "alive": writer_alive(folder, info) if info["status"] == "running" else None,
                "stop_requested": RunFolder(folder).stop_requested,
                **events,
                "skipped": events["skipped"] + dropped,
            }
        )

    def _corrupt(self, folder: Path, reason: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        info = info or {}
        return finite(
            {
                "id": folder.name,
                "family": info.get("family"),
                "method": info.get("method"),
                "status": CORRUPT,
                "error": reason,
                "started": info.get("started"),
                "ended": info.get("ended"),
                "alive": None,
                "stop_requested": False,
                **_empty_events_summary(),
            }
        )

    def _tail(self, name: str) -> _Tail:
        with self._tails_lock:
            tail = self._tails.get(name)
            if tail is None:
                tail = self._tails[name] = _Tail()
            return tail

    @staticmethod
    def _info(folder: Path, tail: _Tail) -> tuple[dict[str, Any], int]:
        st = os.lstat(RunFolder(folder).run_json)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = tail.info
        if cached is None or tail.info_stamp != stamp:
            cached = read_info(folder)
            tail.info, tail.info_stamp = cached, stamp
        return cached

    def _events(self, folder: Path, tail: _Tail) -> dict[str, Any]:
        """The events part of the summary, with ``partial`` true while it is behind the file.

        Up to :data:`SYNC_BYTES` new bytes are read here; a larger backlog (a big run seen for the
        first time, a replaced file) is read on in the background, and this and later requests
        answer from what it has read so far. A request that finds another reading this run does
        not wait for it either."""
        if not tail.lock.acquire(blocking=False):
            return {**tail.published, "partial": True}
        handed_off = False
        try:
            if not self._advance(RunFolder(folder).events, tail, SYNC_BYTES):
                self._catchup.submit(self._catch_up, folder, tail)  # it releases the lock when done
                handed_off = True
        except (Unreadable, OutsideRoot, OSError) as exc:
            tail.reset(None)
            tail.problem = _reason(exc, folder)
        finally:
            if not handed_off:
                tail.lock.release()
        return {**tail.published, "partial": handed_off}

    def _catch_up(self, folder: Path, tail: _Tail) -> None:
        """Read the rest of a run's backlog (in the background, holding the lock ``_events`` took)."""
        try:
            self._advance(RunFolder(folder).events, tail, None)
        except (Unreadable, OutsideRoot, OSError) as exc:
            tail.reset(None)
            tail.problem = _reason(exc, folder)
        finally:
            tail.lock.release()

    @staticmethod
    def _advance(path: Path, tail: _Tail, budget: int | None) -> bool:
        """Read ``path``'s new events into ``tail``, about ``budget`` bytes at most; whether it is up to date."""
        try:
            st = os.lstat(path)
            if st.st_ino == tail.inode and max(tail.offset, tail.scanned) == st.st_size and not tail.problem:
                return True  # nothing new: no need to open it
            f = open_regular(path)
        except FileNotFoundError:
            if tail.inode is not None or tail.problem:
                tail.reset(None)
            return True
        with f:
            st = os.fstat(f.fileno())
            if tail.inode != st.st_ino or st.st_size < tail.offset or tail.problem:
                tail.reset(st.st_ino)
                tail.publish()
            start = max(tail.offset, tail.scanned)
            page_bytes = MAX_PAGE_BYTES if budget is None else max(1, min(MAX_PAGE_BYTES, budget))
            while max(tail.offset, tail.scanned) < st.st_size:
                if budget is not None and max(tail.offset, tail.scanned) - start >= budget:
                    return False
                page = read_page_from(f, tail.offset, page_bytes, tail.scanned)
                tail.feed(page.events, page.skipped)
                progressed = page.offset != tail.offset
                tail.offset, tail.scanned = page.offset, page.scanned
                tail.publish()
                if not progressed:  # only a half-written last line is left, and it was looked at to the end
                    break
        return True


def _reason(exc: BaseException, folder: Path) -> str:
    if isinstance(exc, (Unreadable, OutsideRoot)):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"run {folder.name} has no {RUN_JSON}"
    return f"cannot read run {folder.name}: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
