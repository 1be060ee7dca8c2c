"""Draw a run's views to PNG bytes in a worker process, off the training process's GIL.

Matplotlib holds the GIL while it draws (50–150 ms for the three KD views on a laptop CPU), and a
training loop of small models is mostly Python itself: drawing in a thread of the kernel slows
training by about the share of time spent drawing (a 2 Hz redraw thread cost 10–40 % of the
samples/s here). So the live panel hands each redraw to a small worker process (:mod:`.worker`)
that keeps its own copy of the run's events and answers with a PNG. Should it fail to start or
die, drawing falls back to the calling thread and the panel throttles itself by the measured cost
(see :attr:`Renderer.last_cost`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...core.run import EventLog
from . import protocol
from .drawing import Composer
from .worker import BOOTSTRAP

#: Seconds a draw may take in the worker before it is judged hung and replaced by local drawing
#: (the first answer also waits for the worker to start; generous, for machines under heavy load).
DRAW_TIMEOUT = 120.0
FIRST_TIMEOUT = 300.0
#: How much the worker lowers its priority once started (``os.nice``): on an idle core it draws at
#: full speed; on a busy machine it gets about a tenth of a core it shares with training (Linux's
#: CFS weights 110 : 1024 at 10), so training keeps ~90 % of its speed and frames still come, a
#: few seconds apart. At 19 (15 : 1024) a busy machine showed no live frame at all (a run in
#: JupyterLab went two minutes without one).
WORKER_NICE = 10


class RenderError(RuntimeError):
    """A view raised while drawing; the message carries the worker's traceback."""


class WorkerUnavailable(OSError):
    """The worker cannot draw these views (a view module failed to import there): draw locally."""


class Renderer:
    """Draws the views of one run at a time to PNG bytes, in a worker process when it can.

    Call :meth:`reset` when a run starts, then :meth:`draw` with the run's append-only list of
    events: only the events not yet sent travel to the worker. Thread-safe (one draw at a time).
    The worker lowers its priority by ``nice`` once started (see :func:`.worker.serve`), so on a
    busy machine live frames come less often instead of slowing training; :meth:`draw_local`
    draws a run's final figure in the calling thread.
    """

    def __init__(self, figsize: tuple[float, float] = (11.0, 3.6), dpi: int = 100, process: bool = True, nice: int = WORKER_NICE):
        self.figsize = tuple(figsize)
        self.nice = int(nice)
        self.dpi = int(dpi)
        self.method = ""
        self.views: tuple[str, ...] = ()
        #: Seconds the last draw held the calling thread (the whole draw when drawing locally).
        self.last_cost = 0.0
        #: Seconds the last :meth:`draw_local` took.
        self.final_cost = 0.0
        #: Why the worker is not used, when it is not.
        self.fallback_reason: str | None = None if process else "process=False"
        self._lock = threading.Lock()  # one draw at a time
        self._pending_lock = threading.Lock()
        self._pending: tuple[str, tuple[str, ...]] | None = None
        self._sent = 0
        self._proc: subprocess.Popen | None = None
        self._answered = False
        self._local_log = EventLog()
        self._composer: Composer | None = None
        if process:
            self._spawn()

    @property
    def in_process(self) -> bool:
        """True when drawing happens in the calling thread (no worker)."""
        return self._proc is None

    def reset(self, method: str, views: Sequence[str] | None = None) -> None:
        """Start drawing a new run of ``method`` (its views unless ``views`` is given).

        Never waits for a draw in flight (a worker that a busy machine starves may take long to
        answer): the reset then reaches the worker just before the next draw."""
        from ...core.views import views_for

        with self._pending_lock:
            self._pending = (method, tuple(views) if views is not None else views_for(method))
        if self._lock.acquire(blocking=False):  # nothing in flight: the worker prepares the views now
            try:
                self._apply_reset()
            finally:
                self._lock.release()

    def _apply_reset(self) -> None:
        """Send the pending reset, if any (with ``_lock`` held)."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        self.method, self.views = pending
        self._sent = 0
        self._local_log = EventLog()
        self._composer = None
        if self._proc is not None:
            message = {
                "op": protocol.RESET,
                "views": self.views,
                "modules": view_modules(self.views),
                "figsize": self.figsize,
                "dpi": self.dpi,
            }
            try:
                self._send(message)
            except OSError as exc:
                self._use_local(f"worker died: {exc}")

    def draw(self, events: list[dict], title: str | None = None, fit: bool = False) -> bytes:
        """PNG of the views of ``events`` (the run's events so far, an append-only list); ``fit``
        redraws every view with margins fitted to its labels (a run's final figure)."""
        with self._lock:
            self._apply_reset()
            start = time.perf_counter()
            end = len(events)
            new = events[self._sent : end]
            self._sent = end
            self._local_log.extend(new)  # kept so that a dead worker can be replaced at once
            if self._proc is not None:
                try:
                    return self._draw_remote(new, title, fit)
                except (OSError, EOFError, TimeoutError) as exc:
                    self._use_local(f"worker failed: {exc}")
                finally:
                    self.last_cost = time.perf_counter() - start
            if self._composer is None:
                self._composer = Composer(self.views, self.figsize, self.dpi)
            png = self._composer.png(self._local_log, title, fit)
            self.last_cost = time.perf_counter() - start
            return png

    def draw_local(self, events: Sequence[dict], views: Sequence[str], title: str | None = None, fit: bool = True) -> bytes:
        """PNG of ``views`` of ``events`` drawn in the calling thread, whatever the worker is doing:
        a run's final figure, once training has ended, is drawn at the kernel's own priority and
        never waits for a worker that a busy machine starves. Sets :attr:`final_cost`."""
        start = time.perf_counter()
        png = Composer(tuple(views), self.figsize, self.dpi).png(EventLog(list(events)), title, fit)
        self.final_cost = time.perf_counter() - start
        return png

    def placeholder(self, method: str, views: Sequence[str] | None = None, title: str | None = None) -> bytes:
        """PNG of the empty views of ``method`` (drawn in the calling thread; no run needed)."""
        from ...core.views import views_for

        views = tuple(views) if views is not None else views_for(method)
        return Composer(views, self.figsize, self.dpi).png(EventLog(), title)

    def close(self) -> None:
        """Stop the worker (it also exits by itself when this process ends)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # it holds nothing worth a clean exit
            proc.wait()

    # -- internals --------------------------------------------------------------------------------
    def _spawn(self) -> None:
        package = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", BOOTSTRAP, package, str(self.nice)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            self._use_local(f"worker did not start: {exc}")

    def _use_local(self, reason: str) -> None:
        """Switch to drawing in the calling thread (the local log already holds every sent event)."""
        self.fallback_reason = reason
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def _send(self, message: dict[str, Any]) -> None:
        self._proc.stdin.write(protocol.encode(message))
        self._proc.stdin.flush()

    def _draw_remote(self, new: list[dict], title: str | None, fit: bool = False) -> bytes:
        self._send({"op": protocol.DRAW, "events": new, "title": title, "fit": fit})
        kind, payload = protocol.read_reply(self._proc.stdout, DRAW_TIMEOUT if self._answered else FIRST_TIMEOUT, DRAW_TIMEOUT)
        self._answered = True
        if kind == protocol.ERROR:
            raise RenderError(payload.decode(errors="replace"))
        if kind == protocol.UNAVAILABLE:
            raise WorkerUnavailable(payload.decode(errors="replace").strip().splitlines()[-1])
        return payload


def view_modules(views: Sequence[str] | None) -> list[str]:
    """Modules that registered ``views`` (family view modules register theirs when imported);
    the shared views module is left out: the worker imports it anyway."""
    from ...core.views import VIEWS
    from .. import views as shared

    return sorted({VIEWS[v].__module__ for v in views or () if v in VIEWS} - {shared.__name__})
