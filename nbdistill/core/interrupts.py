"""SIGTERM and Ctrl-C while ``nd.fit`` trains: a stop, not a failure.

:class:`StopOnSignals` is entered around ``trainer.fit`` in the main thread. SIGTERM sets the
run's graceful-stop event (the run ends after its current batch, ``stopped``, with a checkpoint;
Lightning's own SIGTERM handling, composed with this one, ends it the same way through
:class:`~.callbacks.RunStatus`). On exit the previous handlers are put back — SIGINT's too, which
Lightning sets to "ignore" when it handles a ``KeyboardInterrupt`` (in a notebook that would
disable the interrupt button for the rest of the session) — and a SIGTERM received meanwhile is
passed on to the previous handler (the default one ends the process with status 128 + 15).
Outside the main thread (the panel's training thread) nothing is installed: Python delivers
signals to the main thread only.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopOnSignals:
    """Context manager: SIGTERM → ``event.set()`` while inside; handlers restored on exit (see the module)."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.received = signum
        self.event.set()

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.getsignal(signum)
        if self._previous[signal.SIGTERM] not in (signal.SIG_IGN, None):  # None: set outside Python, cannot be restored
            signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def restore(self) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back from here
                signal.signal(signum, handler)

    def __exit__(self, exc_type, exc, tb) -> None:
        previous = self._previous.get(signal.SIGTERM)
        self.restore()
        if self.received is None or exc_type is not None:
            return
        # the run is stopped and saved: now do what SIGTERM would have done
        if callable(previous):
            previous(self.received, None)
        elif previous in (signal.SIG_DFL, None):
            raise SystemExit(128 + self.received)
