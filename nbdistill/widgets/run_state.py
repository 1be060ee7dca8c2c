"""One run of the live panel: everything that belongs to it, made fresh by every Start.

The training thread writes only :meth:`RunState.on_event` (one list append) and
:meth:`RunState.on_progress` (one tuple); the panel's ticker thread reads them to draw the status
line and the figure. Nothing of a previous run can leak into the next one, because each Start
makes a new :class:`RunState` instead of resetting fields.
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import RunFolderError
from ..core.run import EventLog, Run
from ..core.runfolder import RUN_JSON
from .controls import plain

STATUSES = ("idle", "running", "finished", "stopped", "failed")
STATUS_COLORS = {"idle": "#666", "running": "#1f6feb", "finished": "#1a7f37", "stopped": "#9a6700", "failed": "#cf222e"}
BAR_STYLES = {"running": "info", "finished": "success", "stopped": "warning", "failed": "danger"}
#: The scalars the status line quotes while a run goes (the first one the run has logged): each
#: family's headline figure, the student's accuracy, for a sample generator its energy distance, for a
#: policy its held-out regret (with ``± <name>_se``, the standard error, where the run logs one).
QUOTED_SCALARS = (
    ("val/student_acc", "val student acc", ".3f"),
    ("val/energy_distance", "val energy distance", ".3g"),
    ("val/regret", "val regret", ".3g"),
)


def status_label(status: str, note: str | None = None) -> str:
    """The coloured word that starts the status line (``note`` replaces the status's own word)."""
    return f"<b style='color:{STATUS_COLORS.get(status, '#666')}'>{html.escape(note or status)}</b>"


@dataclass(eq=False)
class RunState:
    """One run of a panel: its method, id and folder, the events and progress received so far,
    its status and clock, the events that stop it and mark its end, and its threads."""

    method: str
    run_id: str
    root: Path
    max_epochs: int
    hparams: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    #: Every event of the run, in order, as the training thread received them (append-only).
    events: list[dict] = field(default_factory=list)
    #: (steps done, steps in all) after the last training batch.
    progress: tuple[int, int] = (0, 0)
    #: (name, epoch, epochs) of a phase before training (GLNN's own teacher), else ``None``.
    phase: tuple[str, int | None, int | None] | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    #: Figure redraws of this run.
    redraws: int = 0
    #: Set once the final figure is shown: a live frame that comes later is dropped.
    final_drawn: bool = False
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: Set when training has ended (whatever the outcome), before the final figure.
    done: threading.Event = field(default_factory=threading.Event)
    trainer: threading.Thread | None = None
    ticker: threading.Thread | None = None
    _run: Run | None = None
    _log: EventLog = field(default_factory=EventLog)
    _scanned: int = 0
    _latest: dict[str, Any] = field(default_factory=dict)

    # -- written by the training thread ----------------------------------------------------------
    def on_event(self, event: dict) -> None:
        """Observer of the run's logger, on the training thread: one list append, nothing else."""
        self.events.append(event)

    def on_progress(self, done: int, total: int, metrics: dict) -> None:
        """Progress callback, on the training thread after each batch (and each epoch of a phase
        before training, such as GLNN's own teacher: ``metrics["phase"]``)."""
        if metrics and metrics.get("phase"):
            self.phase = (str(metrics["phase"]), metrics.get("epoch"), metrics.get("epochs"))
        else:
            self.phase = None
            self.progress = (done, total)

    def finish(self, status: str, run: Run | None) -> None:
        """Training has ended with ``status``; ``run`` is its folder, if it got one."""
        if run is not None:
            self._run = run
        self.status = status
        self.ended = time.monotonic()
        self.done.set()

    # -- read by the panel -----------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return self.root / self.run_id

    @property
    def run(self) -> Run | None:
        """The run folder, once training has created it."""
        if self._run is None and (self.folder / RUN_JSON).exists():
            try:
                self._run = Run(self.folder)
            except RunFolderError:  # run.json being replaced this instant
                return None
        return self._run

    @property
    def running(self) -> bool:
        return self.trainer is not None and self.trainer.is_alive()

    @property
    def log(self) -> EventLog:
        """Every event received so far, as an :class:`EventLog` (extended, never rebuilt)."""
        events = self.events
        self._log.extend(events[len(self._log) : len(events)])
        return self._log

    def latest(self, name: str) -> Any:
        """Last value of scalar ``name`` (scans only the events not seen before)."""
        events = self.events
        end = len(events)
        for event in events[self._scanned : end]:
            if event.get("kind") == "scalar":
                self._latest[event["name"]] = event.get("value")
        self._scanned = end
        return self._latest.get(name)

    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def title(self) -> str:
        return f"{self.method} — {self.run_id} ({self.status}, step {self.progress[0]})"

    def status_line(self, note: str | None = None) -> str:
        """The status line's HTML: status, then the phase or step/epoch, seconds and the quoted scalar."""
        parts = [status_label(self.status, note)]
        phase = self.phase
        if phase is not None and self.status == "running":
            name, epoch, epochs = phase
            parts.append(f"{html.escape(name)} epoch {epoch}/{epochs}" if epoch is not None else html.escape(name))
        else:
            done, total = self.progress
            parts.append(f"step {done}/{total or '?'}")
            if total:
                per_epoch = max(1, math.ceil(total / self.max_epochs))
                parts.append(f"epoch {min(self.max_epochs, done // per_epoch + 1)}/{self.max_epochs}")
            parts.append(f"{self.elapsed():.0f} s")
            for name, label, spec in QUOTED_SCALARS:
                value = self.latest(name)
                if value is not None:
                    se = self.latest(f"{name}_se")
                    parts.append(f"{label} {value:{spec}}" + (f" ± {se:{spec}}" if se is not None else ""))
                    break
        return " &nbsp;·&nbsp; ".join(parts)

    def run_html(self) -> str:
        where = html.escape(str(self.folder))
        return f"<span style='color:#555;font-size:0.9em'>run <code title='{where}'>{html.escape(self.run_id)}</code></span>"


def labelled_logs(runs: list[Run]) -> dict[str, EventLog]:
    """The logs of several runs by label, for overlaying them: each run's method, with its
    hyper-parameters (but the optimiser's) where several runs share a method, and ``#i`` where
    that is still ambiguous."""
    methods = [r.method for r in runs]
    logs: dict[str, EventLog] = {}
    for i, r in enumerate(runs):
        label = r.method
        if methods.count(r.method) > 1:
            label += " " + ", ".join(f"{k}={plain(v)}" for k, v in r.hparams.items() if k not in ("lr", "weight_decay"))
        if label in logs:
            label += f" #{i + 1}"
        logs[label] = r.log
    return logs
