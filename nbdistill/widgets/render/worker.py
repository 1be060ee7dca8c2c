"""The drawing worker process: reads requests on stdin, answers each draw with a PNG on stdout.

It imports only matplotlib, the views and the modules that registered the run's views, without
the package ``__init__`` files (which import torch and Lightning: 10 s and 400 MB for a process
that only draws), so it starts in about a second and uses ~70 MB. It keeps its own copy of the
run's events; the parent sends only the new ones. See :mod:`.protocol` for the frames.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import types

from ...core.run import EventLog
from . import protocol
from .drawing import Composer

#: The worker's command line (``python -c BOOTSTRAP <package dir>``): makes the packages
#: nbdistill, nbdistill.core and nbdistill.widgets importable without running their ``__init__``.
BOOTSTRAP = """
import sys, types, os
pkg = sys.argv[1]
for name in ("nbdistill", "nbdistill.core", "nbdistill.widgets"):
    module = types.ModuleType(name)
    module.__path__ = [os.path.join(pkg, *name.split(".")[1:])]
    sys.modules[name] = module
from nbdistill.widgets.render.worker import serve
serve(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""
#: Longest traceback sent back, in characters.
TRACEBACK_CHARS = 4000


def import_light(name: str) -> None:
    """Import module ``name`` without running its parent packages' ``__init__`` (which import torch)."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if package not in sys.modules:
            module = types.ModuleType(package)
            parent = sys.modules[".".join(parts[: i - 1])].__path__[0] if i > 1 else None
            module.__path__ = [os.path.join(parent, parts[i - 1])] if parent else []
            sys.modules[package] = module
    importlib.import_module(name)


def warm_up() -> None:
    """Import the shared views and draw a small figure once: loads the fonts and fills
    matplotlib's caches, so that the first real draw (often while training has started) costs what
    later ones do."""
    from .. import views  # noqa: F401 (registers the shared views)
    from .drawing import new_figure

    fig = new_figure((2.0, 1.5), 50)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="warm")
    ax.set_title("warm-up")
    ax.legend()
    fig.tight_layout()
    fig.canvas.draw()


def serve(nice: int = 0) -> None:
    """The worker's loop: read requests from stdin, answer draws on stdout, exit at end of input.

    After :func:`warm_up` (at the priority it was started with) the worker lowers its priority by
    ``nice`` (``os.nice``), so that on a busy machine its draws take the CPU that training leaves."""
    warm_up()
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:
            pass
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in a view must not corrupt the answers
    inp = sys.stdin.buffer
    log, composer, failure = EventLog(), None, None
    while True:
        try:
            message = protocol.read_message(inp)
        except (EOFError, OSError):  # the parent died mid-frame, or sent garbage: nothing to answer
            return
        if message is None:
            return
        if message["op"] == protocol.RESET:
            log, composer, failure = EventLog(), None, None
            try:
                for name in message.get("modules") or ():
                    import_light(name)
                composer = Composer(message["views"], tuple(message["figsize"]), int(message["dpi"]))
            except Exception:  # noqa: BLE001 (reported to the parent, which then draws locally)
                failure = traceback.format_exc()[-TRACEBACK_CHARS:].encode()
            continue
        log.extend(message.get("events") or [])
        if composer is None:
            kind, payload = protocol.UNAVAILABLE, failure or b"no reset before the first draw"
        else:
            try:
                kind, payload = protocol.PNG, composer.png(log, message.get("title"), bool(message.get("fit")))
            except Exception:  # noqa: BLE001 (a view's bug is reported, the worker lives on)
                kind, payload = protocol.ERROR, traceback.format_exc()[-TRACEBACK_CHARS:].encode()
        out.write(protocol.reply(kind, payload))
        out.flush()
