"""The server's static plot of a run (``GET runs/<id>/plot.png``), drawn from a thinned event log.

``Run.plot()`` holds every event in memory; a run with a 50 MB ``events.jsonl`` made the server
hold hundreds of MB for one picture whose lines are cut to :data:`~nbdistill.widgets.views.MAX_POINTS`
points anyway. Here the file is read a page at a time and each name keeps at most about
``2 * EVENTS_PER_NAME`` of its events: every ``k``-th one, ``k`` doubling whenever the kept ones
reach twice the cap (so they stay evenly spread over the run), plus always its last event (the
views show last values). Memory is O(names x cap) whatever the length of the run, and a line is
parsed only if it is kept: its name is found by a pattern first (a line whose name the pattern
cannot read is parsed whole).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..core.liveness import effective_status
from ..core.run import EventLog
from ..core.runfolder import RunFolder
from .readers import MAX_LINE_BYTES, MAX_PAGE_BYTES, open_regular, parse_event, read_info

#: Most events of one name the plot keeps (the views draw at most 400 points of a line).
EVENTS_PER_NAME = 1000
#: The ``"name"`` of an event line without escapes; anything else is found by parsing the line.
_NAME = re.compile(rb'"name"\s*:\s*"([^"\\]*)"')


class Thinned:
    """Every ``stride``-th line of one name, between ``cap`` and ``2 * cap`` of them, and the last one."""

    def __init__(self, cap: int):
        self.cap = cap
        self.stride = 1
        self.seen = 0
        self.kept: list[tuple[int, dict]] = []
        self.last: tuple[int, bytes] | None = None

    def wants_next(self) -> bool:
        return self.seen % self.stride == 0

    def add(self, index: int, raw: bytes, event: dict | None) -> None:
        """Count line ``index`` (``raw``); keep ``event`` (parsed only when :meth:`wants_next`)."""
        if event is not None:
            self.kept.append((index, event))
            if len(self.kept) >= 2 * self.cap:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1
        self.last = (index, raw)

    def events(self) -> list[tuple[int, dict]]:
        if self.last is None or (self.kept and self.kept[-1][0] == self.last[0]):
            return list(self.kept)
        last = _parse(self.last[1])
        return [*self.kept, (self.last[0], last)] if last is not None else list(self.kept)


def _parse(raw: bytes) -> dict | None:
    return parse_event(raw)[0]


def _lines(path: Path):
    """The complete lines of ``events.jsonl`` at ``path``, read a page at a time (longer lines than
    :data:`~.readers.MAX_LINE_BYTES` are dropped)."""
    try:
        f = open_regular(path)
    except FileNotFoundError:
        return
    with f:
        carry = b""
        while page := f.read(MAX_PAGE_BYTES):
            end = page.rfind(b"\n")
            if end < 0:
                carry = carry + page if len(carry) <= MAX_LINE_BYTES else b"-"
                continue
            data, carry = carry + page[: end + 1], page[end + 1 :]
            yield from data.splitlines()


def thinned_log(path: Path, cap: int | None = None) -> EventLog:
    """The events of ``events.jsonl`` at ``path``, at most about ``2 * cap + 1`` of each name, in file order."""
    cap = EVENTS_PER_NAME if cap is None else cap
    by_name: dict[str, Thinned] = {}
    for index, raw in enumerate(_lines(path)):
        match = _NAME.search(raw)
        if match is None:
            event = _parse(raw)
            if event is None:
                continue
            name = event["name"]
        else:
            name, event = match.group(1).decode("utf-8", "replace"), None
        thinned = by_name.get(name)
        if thinned is None:
            thinned = by_name[name] = Thinned(cap)
        if thinned.wants_next():
            event = event or _parse(raw)
            if event is None:
                continue
            if event["name"] != name:  # the pattern found a nested "name": count it where it belongs
                thinned = by_name.setdefault(event["name"], Thinned(cap))
        else:
            event = None
        thinned.add(index, raw, event)
    kept = sorted((pair for t in by_name.values() for pair in t.events()), key=lambda pair: pair[0])
    return EventLog(event for _, event in kept)


def render_plot(folder: Path) -> bytes:
    """The PNG of run ``folder``'s views (those of its method), as ``Run.plot()`` draws them."""
    from ..widgets.views import draw_run

    info, _ = read_info(folder)
    title = f"{info['method']} — {folder.name} ({effective_status(folder, info)})"
    fig = draw_run(thinned_log(RunFolder(folder).events), info["method"], title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()
