"""Drawing a run's views to PNG bytes, redrawing only what changed (used by the worker and locally).

:class:`Composer` draws each view on a figure of its own and pastes them under a title strip;
:class:`ReadLog` records what a view read, so that a view is drawn again only when that changed.
Only matplotlib, PIL and the views: no torch, so the drawing worker starts fast.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ...core.run import EventLog

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
        from ...core.views import check_views
        from ..views import VIEWS_PER_ROW  # (importing it registers the shared views)

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

        from ...core.views import VIEWS

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
