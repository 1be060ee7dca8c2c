"""Draw a run's views to PNG bytes in a worker process, off the training process's GIL.

Matplotlib holds the GIL while it draws (50–150 ms for the three KD views on a laptop CPU), and a
training loop of small models is mostly Python itself: drawing in a thread of the kernel slows
training by about the share of time spent drawing (a 2 Hz redraw thread cost 10–40 % of the
samples/s here). So the live panel hands each redraw to a small worker process that imports only
matplotlib and the views (the core ones and the family view modules the run's views come from,
without the package ``__init__`` files: no torch, so it starts in about a second and uses ~70 MB), keeps its own
copy of the run's events, and answers with a PNG. It runs at normal priority: a lowered one
starved it on a loaded machine (a 25 s start-up, one frame in 15 s); the panel instead bounds how
busy it keeps the worker. Should it fail to start or die, drawing falls back to the calling thread
and the panel throttles itself by the measured cost (see :attr:`Renderer.last_cost`).

Protocol on the worker's stdin/stdout: frames of a 4-byte big-endian length and a payload. The
parent sends JSON ``{"op": "reset", "views", "modules", "figsize", "dpi"}`` and
``{"op": "draw", "events": [new events], "title", "fit"}``; the worker answers each draw with one byte
(``P``: PNG follows; ``E``: a view raised, its traceback follows; ``I``: a view module would not
import, so the parent draws locally) and a frame.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.run import EventLog

#: Seconds a draw may take in the worker before it is judged hung and replaced by local drawing
#: (the first answer also waits for the worker to start; generous, for machines under heavy load).
DRAW_TIMEOUT = 120.0
FIRST_TIMEOUT = 300.0

# Loads nbdistill.core.run and nbdistill.widgets.views without running the package __init__
# files, which import torch and Lightning (10 s and 400 MB for a process that only draws).
_BOOTSTRAP = """
import sys, types, os
pkg = sys.argv[1]
for name in ("nbdistill", "nbdistill.core", "nbdistill.widgets"):
    module = types.ModuleType(name)
    module.__path__ = [os.path.join(pkg, *name.split(".")[1:])]
    sys.modules[name] = module
from nbdistill.widgets.render import serve
serve()
"""


class RenderError(RuntimeError):
    """A view raised while drawing; the message carries the worker's traceback."""


class WorkerUnavailable(OSError):
    """The worker cannot draw these views (a view module failed to import there): draw locally."""


#: Height of the title strip above the views, in inches.
TITLE_HEIGHT = 0.34
#: A view's margins are fitted to its labels again at least every this many of its draws.
REFIT_EVERY = 6
#: PNG compression level: 3 encodes about twice as fast as the default 6, for a file ~20 % larger.
PNG_COMPRESSION = 3


class ReadLog(EventLog):
    """A read-only view of an :class:`EventLog` that notes what a view reads from it.

    :class:`Composer` redraws a view only when something it read has changed: a name it asked
    for got new events, a list of names it asked for grew, or (having read everything) any event.
    """

    def __init__(self, log: EventLog):  # no super().__init__(): it holds no events of its own
        self._log = log
        self.read: set[str] = set()
        self.listed: set[str | None] = set()
        self.everything = False

    @property
    def events(self) -> list[dict]:
        self.everything = True
        return self._log.events

    def of(self, name: str) -> list[dict]:
        self.read.add(name)
        return self._log.of(name)

    def scalars(self, name: str) -> tuple[list[int], list[float]]:
        self.read.add(name)
        return self._log.scalars(name)

    def last(self, name: str) -> dict | None:
        self.read.add(name)
        return self._log.last(name)

    def last_value(self, name: str, default: float | None = None) -> float | None:
        self.read.add(name)
        return self._log.last_value(name, default)

    def names(self, kind: str | None = None) -> list[str]:
        self.listed.add(kind)
        return self._log.names(kind)

    def __len__(self) -> int:
        self.everything = True
        return len(self._log)

    def append(self, event: dict) -> None:
        raise TypeError("a view cannot add events")

    def extend(self, events) -> None:
        raise TypeError("a view cannot add events")

    def state(self, log: EventLog) -> tuple:
        """What was read, as it is in ``log`` now: equal states mean an identical drawing."""
        return (
            tuple(sorted((name, len(log.of(name))) for name in self.read)),
            tuple(sorted((str(kind), tuple(log.names(kind))) for kind in self.listed)),
            len(log) if self.everything else None,
        )


class Composer:
    """Draws a run's views in rows of up to :data:`~.views.VIEWS_PER_ROW`, each on its own figure, redrawing
    only the views that changed. ``figsize`` is the size of one row (and the title strip).

    While a run trains, most new events touch one view (the training loss); the views fed once
    an epoch (accuracy, per-class gap) are drawn again only when their events come. A title strip
    sits on top. The PNG looks like :func:`~.views.draw_run`'s, each view laid out on its own.
    """

    def __init__(self, views: Sequence[str], figsize: tuple[float, float] = (11.0, 3.6), dpi: int = 100):
        from ..core.views import check_views
        from .views import VIEWS_PER_ROW  # (importing it registers the shared views)

        self.views = check_views(views)
        self.dpi = int(dpi)
        self.width = round(figsize[0] * dpi)
        self.title_height = round(TITLE_HEIGHT * dpi)
        row_height = round(figsize[1] * dpi) - self.title_height
        n = max(1, len(self.views))
        per_row = min(n, VIEWS_PER_ROW)
        rows = -(-n // per_row)
        self.height = rows * row_height
        edges = [round(i * self.width / per_row) for i in range(per_row + 1)]
        cells = [(edges[i % per_row], edges[i % per_row + 1], (i // per_row) * row_height) for i in range(n)]
        self._figures = [new_figure(((b - a) / dpi, row_height / dpi), dpi) for a, b, _ in cells]
        self._offsets = [(a, top) for a, _, top in cells]
        self._reads: list[ReadLog | None] = [None] * len(self.views)
        self._states: list[tuple | None] = [None] * len(self.views)
        self._pixels: list[Any] = [None] * len(self.views)
        self._margins: list[dict[str, float] | None] = [None] * len(self.views)
        self._kinds: list[tuple | None] = [None] * len(self.views)
        self._draws = [0] * len(self.views)
        self._fitted = [False] * len(self.views)
        self._title_fig = new_figure((self.width / dpi, self.title_height / dpi), dpi)
        self._title: tuple[str | None, Any] = ("", None)
        #: Views drawn again by the last :meth:`png` (for tests and curiosity).
        self.redrawn: list[str] = []

    def png(self, log: EventLog, title: str | None = None, fit: bool = False) -> bytes:
        """The PNG of ``log``'s views. A view's margins are fitted to its labels (``tight_layout``,
        a third of its drawing time) when what it shows changes kind (other series), every
        :data:`REFIT_EVERY` of its draws, and for every view not drawn so when ``fit`` (a run's
        final figure); in between, its last fitted margins are reused."""
        from PIL import Image

        from ..core.views import VIEWS

        self.redrawn = []
        for i, name in enumerate(self.views):
            unchanged = self._reads[i] is not None and self._reads[i].state(log) == self._states[i]
            if unchanged and (self._fitted[i] or not fit):
                continue
            fig, reads = self._figures[i], ReadLog(log)
            fig.clear()
            VIEWS[name](fig.add_subplot(), reads)
            state = reads.state(log)
            kind = (tuple(n for n, _ in state[0]), state[1])  # what was read, without the counts
            self._draws[i] += 1
            # (staggered by the view's index, so that the views do not all fit on the same draw)
            refit = fit or kind != self._kinds[i] or self._margins[i] is None or (self._draws[i] + i) % REFIT_EVERY == 0
            if refit:
                fig.tight_layout(pad=0.8)
                pars = fig.subplotpars
                self._margins[i] = dict(left=pars.left, right=pars.right, bottom=pars.bottom, top=pars.top)
                self._kinds[i] = kind
            else:
                fig.subplots_adjust(**self._margins[i])
            self._fitted[i] = refit
            self._pixels[i] = _rgb(fig)
            self._reads[i], self._states[i] = reads, state
            self.redrawn.append(name)
        height = self.title_height if title else 0
        image = Image.new("RGB", (self.width, height + self.height), "white")
        if title:
            image.paste(self._title_image(title), (0, 0))
        for (left, top), pixels in zip(self._offsets, self._pixels):
            image.paste(pixels, (left, height + top))
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=PNG_COMPRESSION)
        return buf.getvalue()

    def _title_image(self, title: str):
        if self._title[0] != title:
            fig = self._title_fig
            fig.clear()
            fig.text(0.5, 0.45, title, ha="center", va="center", fontsize=10)
            self._title = (title, _rgb(fig))
        return self._title[1]


def _rgb(fig: Figure):
    from PIL import Image

    fig.canvas.draw()
    return Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def new_figure(figsize: tuple[float, float], dpi: int) -> Figure:
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


class Renderer:
    """Draws the views of one run at a time to PNG bytes, in a worker process when it can.

    Call :meth:`reset` when a run starts, then :meth:`draw` with the run's append-only list of
    events: only the events not yet sent travel to the worker. Thread-safe (one draw at a time).
    """

    def __init__(self, figsize: tuple[float, float] = (11.0, 3.6), dpi: int = 100, process: bool = True):
        self.figsize = tuple(figsize)
        self.dpi = int(dpi)
        self.method = ""
        self.views: tuple[str, ...] = ()
        #: Seconds the last draw held the calling thread (the whole draw when drawing locally).
        self.last_cost = 0.0
        #: Why the worker is not used, when it is not.
        self.fallback_reason: str | None = None if process else "process=False"
        self._lock = threading.Lock()
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

    def _spawn(self) -> None:
        package = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, package],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            self._use_local(f"worker did not start: {exc}")

    def reset(self, method: str, views: Sequence[str] | None = None) -> None:
        """Start drawing a new run of ``method`` (its views unless ``views`` is given)."""
        from ..core.views import views_for

        with self._lock:
            self.method = method
            self.views = tuple(views) if views is not None else views_for(method)
            self._sent = 0
            self._local_log = EventLog()
            self._composer = None
            if self._proc is not None:
                try:
                    self._send(
                        {
                            "op": "reset",
                            "views": self.views,
                            "modules": view_modules(self.views),
                            "figsize": self.figsize,
                            "dpi": self.dpi,
                        }
                    )
                except OSError as exc:
                    self._use_local(f"worker died: {exc}")

    def draw(self, events: list[dict], title: str | None = None, fit: bool = False) -> bytes:
        """PNG of the views of ``events`` (the run's events so far, an append-only list); ``fit``
        redraws every view with margins fitted to its labels (a run's final figure)."""
        with self._lock:
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

    def placeholder(self, method: str, views: Sequence[str] | None = None, title: str | None = None) -> bytes:
        """PNG of the empty views of ``method`` (drawn in the calling thread; no run needed)."""
        from ..core.views import views_for

        views = tuple(views) if views is not None else views_for(method)
        return Composer(views, self.figsize, self.dpi).png(EventLog(), title)

    def close(self) -> None:
        """Stop the worker (it also exits by itself when this process ends)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # it holds nothing worth a clean exit
            proc.wait()

    # -- internals --------------------------------------------------------------------------------
    def _use_local(self, reason: str) -> None:
        """Switch to drawing in the calling thread (the local log already holds every sent event)."""
        self.fallback_reason = reason
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, default=_jsonable, allow_nan=True).encode()
        self._proc.stdin.write(struct.pack(">I", len(data)) + data)
        self._proc.stdin.flush()

    def _draw_remote(self, new: list[dict], title: str | None, fit: bool = False) -> bytes:
        self._send({"op": "draw", "events": new, "title": title, "fit": fit})
        kind = _read_exact(self._proc.stdout, 1, DRAW_TIMEOUT if self._answered else FIRST_TIMEOUT)
        self._answered = True
        (size,) = struct.unpack(">I", _read_exact(self._proc.stdout, 4, DRAW_TIMEOUT))
        payload = _read_exact(self._proc.stdout, size, DRAW_TIMEOUT)
        if kind == b"E":
            raise RenderError(payload.decode(errors="replace"))
        if kind == b"I":
            raise WorkerUnavailable(payload.decode(errors="replace").strip().splitlines()[-1])
        return payload


def view_modules(views: Sequence[str] | None) -> list[str]:
    """Modules that registered ``views`` (family view modules register theirs when imported)."""
    from ..core.views import VIEWS

    return sorted({VIEWS[v].__module__ for v in views or () if v in VIEWS} - {__name__.rsplit(".", 1)[0] + ".views"})


def _import_light(name: str) -> None:
    """Import module ``name`` without running its parent packages' ``__init__`` (which import torch)."""
    import importlib
    import types

    parts = name.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if package not in sys.modules:
            module = types.ModuleType(package)
            parent = sys.modules[".".join(parts[: i - 1])].__path__[0] if i > 1 else None
            module.__path__ = [os.path.join(parent, parts[i - 1])] if parent else []
            sys.modules[package] = module
    importlib.import_module(name)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)


def _read_exact(stream: BinaryIO, size: int, timeout: float) -> bytes:
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


def _read_frame(stream: BinaryIO) -> dict | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return json.loads(stream.read(size))


def serve() -> None:
    """The worker's loop: read frames from stdin, answer draws on stdout, exit at end of input."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in a view must not corrupt the answers
    inp = sys.stdin.buffer
    log, composer, failure = EventLog(), None, None
    while True:
        message = _read_frame(inp)
        if message is None:
            return
        if message["op"] == "reset":
            log, composer, failure = EventLog(), None, None
            try:
                for name in message.get("modules") or ():
                    _import_light(name)
                composer = Composer(message["views"], tuple(message["figsize"]), int(message["dpi"]))
            except Exception:  # noqa: BLE001 (reported to the parent, which then draws locally)
                import traceback

                failure = traceback.format_exc()[-4000:].encode()
            continue
        log.extend(message.get("events") or [])
        if composer is None:
            kind, payload = b"I", failure or b"no reset before the first draw"
        else:
            try:
                kind, payload = b"P", composer.png(log, message.get("title"), bool(message.get("fit")))
            except Exception:  # noqa: BLE001 (a view's bug is reported, the worker lives on)
                import traceback

                kind, payload = b"E", traceback.format_exc()[-4000:].encode()
        out.write(kind + struct.pack(">I", len(payload)) + payload)
        out.flush()
