"""The live training panel: method, hyper-parameters, Start/Stop, progress and a live figure.

    panel = nd.panel("kd", teacher=nd.zoo.teacher("digits-mlp"),
                     student=nd.models.MLP(64, [16], 10), data=nd.data.Digits())
    panel                      # shows it; or from code:
    panel.start(temperature=8) # same as clicking Start after moving the slider
    run = panel.wait()         # the finished (or stopped) run folder

Training runs in a background thread, so the cell returns at once and the notebook stays usable.
The training thread only appends each event to a list and stores the progress (an observer and a
callback of :func:`nbdistill.fit`, on the run's :class:`~.run_state.RunState`); a ticker thread
updates the progress widgets a few times a second and asks for a figure at most ``redraw_hz``
times a second, only when new events came. Live figures are drawn by a worker process
(:mod:`.render`) at a lowered priority, so matplotlib never holds the kernel's GIL and takes only
the CPU that training leaves; once training has ended, the training thread draws the final figure
itself, so that it never waits for a worker that a busy machine starves.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from typing import Any

import ipywidgets as W

from ..core.errors import ConfigError, TrainingFailed
from ..core.fit import fit
from ..core.logger import new_run_id
from ..core.registry import get_method, methods
from ..core.run import EventLog, Run
from ..core.runfolder import runs_root as default_runs_root
from ..core.views import get_view, views_for
from ..data.adapt import as_datamodule
from .controls import check_max_epochs, controls_for, default_method, read_values, summary_html
from .layout import PanelLayout
from .render import Renderer, RenderError
from .run_state import BAR_STYLES, STATUSES, RunState, labelled_logs, status_label

#: Seconds between two updates of the progress bar and status line.
TICK = 0.25
#: Longest share of wall time the figure may cost the kernel when it is drawn in-process (no worker).
LOCAL_DUTY = 0.05
#: Longest share of wall time the drawing worker may be busy. 1: no limit beyond ``redraw_hz``, since
#: the worker runs at a lower priority (``render.WORKER_NICE``) and the scheduler already gives it
#: only a tenth of a core that training needs; a wall-time duty would stretch the wait after a frame
#: the scheduler slowed, and a busy machine would show no live frame at all.
WORKER_DUTY = 1.0
FIGSIZE = (11.0, 3.6)


class Panel:
    """Controls, Start/Stop, progress and a live figure for training one family's methods.

    Args:
        family: the family whose methods the dropdown lists (``"kd"``); a method's name
            (``"policy.dpt"``) stands for its family with that method selected.
        teacher, student, data: the models and LightningDataModule every run uses. Each Start
            trains a fresh copy of ``student`` (as it was when the panel was made).
        method: the method selected at first; default the family's first lesson (``kd.hinton``
            for ``kd``), else its first method that uses a teacher (that needs none when no
            teacher is given).
        max_epochs, seed, runs_root: passed to :func:`nbdistill.fit`.
        redraw_hz: most figure redraws a second while training.
        figsize, dpi: size of the live figure in inches and its resolution.
        render_process: draw figures in a worker process (default) rather than in the kernel.

    Attributes: :attr:`status` (``idle``, ``running``, ``finished``, ``stopped``, ``failed``),
    :attr:`error` (the message shown in the error box, or ``None``), :attr:`run`, :attr:`log`,
    :attr:`redraws` (figure redraws of the current run) and :attr:`widget` (the top ``VBox``).
    """

    def __init__(
        self,
        family: str,
        teacher=None,
        student=None,
        data=None,
        method: str | None = None,
        max_epochs: int = 20,
        seed: int = 0,
        runs_root=None,
        redraw_hz: float = 2.0,
        figsize: tuple[float, float] = FIGSIZE,
        dpi: int = 100,
        render_process: bool = True,
    ):
        if "." in family and method is None:  # nd.panel("policy.dpt", ...): the family's panel, on that method
            family, method = family.split(".", 1)[0], family
        names = methods(family)
        if not names:
            raise ConfigError(f"family {family!r} has no registered methods")
        if student is None:
            raise ConfigError("the panel needs a student: pass student=... (e.g. nd.models.MLP(64, [32], 10))")
        if data is None:
            raise ConfigError("the panel needs data: pass data=... (e.g. nd.data.Digits())")
        if method is None:
            method = default_method(names, teacher is not None)
        elif method not in names:
            get_method(method)  # an unknown name gets the registry's did-you-mean message
            raise ConfigError(f"{method!r} is not a {family} method; {family} has {names}")
        check_max_epochs(max_epochs)
        if not redraw_hz > 0:
            raise ConfigError(f"redraw_hz must be positive, got {redraw_hz!r}")

        self.family = family
        self.teacher = teacher
        self.data = as_datamodule(data)  # (X, y), a dict of splits, a Dataset, PyG graphs: see nd.data.as_datamodule
        self.seed = seed
        self.runs_root = runs_root
        self.redraw_hz = float(redraw_hz)
        self._student = copy.deepcopy(student)  # pristine: every Start trains a copy of this
        self.error: str | None = None
        #: Every run this panel has made, oldest first (see :meth:`overlay`).
        self.runs: list[Run] = []
        #: The current (or last) run's state; a fresh one every Start.
        self._state: RunState | None = None
        self._controls: dict[str, W.ValueWidget] = {}
        self._figure_lock = threading.Lock()  # the final figure and a late live frame

        self.renderer = Renderer(figsize, dpi, process=render_process)
        self._finalizer = weakref.finalize(self, self.renderer.close)
        self._ui = PanelLayout(family, names, method, max_epochs, figsize, dpi)
        self.widget = self._ui.box
        self._ui.start_button.on_click(lambda _: self._click_start())
        self._ui.stop_button.on_click(lambda _: self.stop())
        self._ui.method_dropdown.observe(self._on_method_change, names="value")
        self._rebuild_controls(method)
        self._update_status()
        self.redraw()
        self.renderer.reset(method, views_for(method))  # the worker loads the method's views before Start

    # -- public API ---------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The method selected in the dropdown."""
        return self._ui.method_dropdown.value

    @property
    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters the controls hold now."""
        return read_values(self._controls)

    @property
    def max_epochs(self) -> int:
        return int(self._ui.epochs.value)

    @property
    def status(self) -> str:
        """``idle`` before the first run, else the current (or last) run's status."""
        return self._state.status if self._state is not None else "idle"

    @property
    def redraws(self) -> int:
        """Figure redraws of the current (or last) run."""
        return self._state.redraws if self._state is not None else 0

    @property
    def run(self) -> Run | None:
        """The run folder of the current (or last) run, once training has created it."""
        return self._state.run if self._state is not None else None

    @property
    def log(self) -> EventLog:
        """Every event of the current run received so far."""
        return self._state.log if self._state is not None else EventLog()

    @property
    def png(self) -> bytes:
        """The PNG the live figure shows now."""
        return bytes(self._ui.figure.value)

    @property
    def running(self) -> bool:
        return self._state is not None and self._state.running

    def start(self, **overrides: Any) -> None:
        """Start a run, as clicking Start does; ``overrides`` are set on the controls first.

        Besides the method's hyper-parameters, ``overrides`` may hold ``method`` and ``max_epochs``.
        Bad input is shown in the error box and in :attr:`error`, and no run starts: an unknown
        name, a value out of range or a missing teacher at once; models that do not fit the data
        when :func:`nbdistill.fit` checks them, before training (:meth:`wait` returns then).
        """
        if self.running:
            raise RuntimeError("a run is already going: stop() it or wait() for it first")
        self._set_error(None)
        try:
            method, hparams, max_epochs = self._apply(overrides)
            if get_method(method).needs_teacher and self.teacher is None:
                raise ConfigError(f"{method} needs a teacher: pass teacher=... to the panel (e.g. nd.zoo.teacher('digits-mlp'))")
        except ConfigError as exc:
            self._set_error(str(exc))
            return
        state = RunState(method, new_run_id(method), default_runs_root(self.runs_root).resolve(), max_epochs, hparams)
        self._state = state
        self.renderer.reset(method, views_for(method))
        self._ui.set_running(True)
        self._update_status(state)
        student = copy.deepcopy(self._student)
        state.trainer = threading.Thread(target=self._train, args=(state, student), name="nbdistill-panel-train", daemon=True)
        state.ticker = threading.Thread(target=self._tick, args=(state,), name="nbdistill-panel-redraw", daemon=True)
        state.ticker.start()
        state.trainer.start()

    def stop(self) -> None:
        """Ask the run to stop after its current batch; it becomes ``stopped``, with a checkpoint."""
        state = self._state
        if state is not None and state.running:
            state.stop_event.set()
            self._ui.stop_button.disabled = True
            self._update_status(state, note="stopping…")

    def wait(self, timeout: float | None = None) -> Run | None:
        """Wait for the run to end and its final figure to be drawn; return :attr:`run`."""
        state = self._state
        if state is not None and state.trainer is not None:
            state.trainer.join(timeout)
        return self.run

    def overlay(self, stage: str = "val", figsize: tuple[float, float] = (7.0, 4.0)):
        """The teacher–student gap of every run of this panel, overlaid on one matplotlib Figure:
        each run's student accuracy (solid) and agreement with the teacher (dotted) over training,
        the teacher's accuracy dashed (the ``gap_overlay`` view). Runs are labelled by method, and
        by their hyper-parameters where several runs share a method."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        get_view("gap_overlay")(fig.subplots(), labelled_logs(self.runs), stage)
        fig.tight_layout()
        return fig

    def close(self) -> None:
        """Stop any run, end the drawing worker and close the widgets."""
        self.stop()
        self.wait(timeout=30)
        self._finalizer()
        self._ui.close()

    def redraw(self, final: bool = False) -> None:
        """Draw the live figure now (from the events received so far); ``final``: every view with
        margins fitted to its labels, drawn in this thread, as at the end of a run (live redraws go
        to the drawing worker and may reuse margins)."""
        state = self._state
        if state is None:
            title = f"{self.method} (not started)"
            self._ui.figure.value = self.renderer.placeholder(self.method, views_for(self.method), title)
            return
        png = self._draw(state, final)
        if png is not None:
            with self._figure_lock:
                self._show(state, png)

    def _draw(self, state: RunState, final: bool) -> bytes | None:
        try:
            if final:
                return self.renderer.draw_local(state.events, views_for(state.method), state.title())
            return self.renderer.draw(state.events, state.title())
        except RenderError as exc:
            self._set_error(f"the figure could not be drawn: {exc}")
            return None

    def _show(self, state: RunState, png: bytes) -> None:
        self._ui.figure.value = png
        state.redraws += 1

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"Panel({self.family!r}, method={self.method!r}, status={self.status!r})"

    # -- training and ticker threads ----------------------------------------------------------
    def _train(self, state: RunState, student) -> None:
        run, status = None, "failed"
        try:
            run = fit(
                state.method,
                student=student,
                teacher=self.teacher,
                data=self.data,
                max_epochs=state.max_epochs,
                seed=self.seed,
                runs_root=state.root,
                run_id=state.run_id,
                observers=[state.on_event],
                stop_event=state.stop_event,
                progress=state.on_progress,
                **state.hparams,
            )
            status = run.status if run is not None and run.status in STATUSES else "finished"
        except TrainingFailed as exc:
            run = exc.run
            self._set_error(str(exc))
        except ConfigError as exc:  # found by fit's checks, before training: no run folder
            status = "failed" if state.run is not None else "idle"
            self._set_error(str(exc))
        except BaseException as exc:  # noqa: BLE001 (the run must end with a final figure and a status)
            self._set_error(f"{type(exc).__name__}: {exc}")
        finally:
            state.finish(status, run)
            if state.run is not None:
                self.runs.append(state.run)
            self._final_figure(state)
            self._update_status(state)
            self._ui.set_running(False)

    def _final_figure(self, state: RunState) -> None:
        """Once training has ended: every view drawn in this thread at the kernel's priority (not
        in the worker, which a busy machine may starve), then no live frame replaces it."""
        try:
            png = self._draw(state, final=True)
        except Exception as exc:  # noqa: BLE001 (shown in the error box; the run has ended anyway)
            self._set_error(f"the figure could not be drawn: {type(exc).__name__}: {exc}")
            png = None
        with self._figure_lock:
            if png is not None:
                self._show(state, png)
            state.final_drawn = True

    def _tick(self, state: RunState) -> None:
        """Status a few times a second and a live figure at most ``redraw_hz`` times a second
        (fewer when a draw is slow), until training ends (the training thread then draws the final one)."""
        period = 1.0 / self.redraw_hz
        next_draw = time.monotonic() + period
        drawn = 0
        while not state.done.wait(min(TICK, period)):
            self._update_status(state)
            now = time.monotonic()
            if now < next_draw or len(state.events) == drawn:
                continue
            drawn = len(state.events)
            self._live_frame(state)
            duty = LOCAL_DUTY if self.renderer.in_process else WORKER_DUTY
            next_draw = max(now + period, time.monotonic() + self.renderer.last_cost * (1 / duty - 1))

    def _live_frame(self, state: RunState) -> None:
        """One live figure from the ticker: a figure that cannot be drawn is reported, never fatal;
        one that comes after the final figure is dropped."""
        try:
            png = self._draw(state, final=False)
        except Exception as exc:  # noqa: BLE001 (shown in the error box; training goes on)
            self._set_error(f"the figure could not be drawn: {type(exc).__name__}: {exc}")
            return
        with self._figure_lock:
            if png is not None and not state.final_drawn:
                self._show(state, png)

    # -- widgets ------------------------------------------------------------------------------
    def _click_start(self) -> None:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 (a button has nowhere else to report)
            self._set_error(f"{type(exc).__name__}: {exc}")

    def _on_method_change(self, change: dict) -> None:
        self._set_error(None)
        self._rebuild_controls(change["new"])
        if self._state is None:
            self.redraw()

    def _rebuild_controls(self, method: str) -> None:
        spec = get_method(method)
        self._controls = controls_for(spec, keep=self.hparams)
        self._ui.show_controls(self._controls, summary_html(spec, self.teacher is not None))

    def _apply(self, overrides: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        """Check ``overrides``, set them on the controls, and return method, hyper-parameters, epochs."""
        overrides = dict(overrides)
        method = overrides.pop("method", None)
        if method is not None:
            names = list(self._ui.method_dropdown.options)
            if method not in names:
                get_method(method)
                raise ConfigError(f"{method!r} is not a {self.family} method; {self.family} has {names}")
            self._ui.method_dropdown.value = method
        max_epochs = overrides.pop("max_epochs", None)
        if max_epochs is not None:
            check_max_epochs(max_epochs)
            self._ui.epochs.value = max_epochs
        spec = get_method(self.method)
        checked = spec.check_hparams(overrides)  # unknown names and out-of-range values raise here
        for name in overrides:
            self._controls[name].value = checked[name]
        return self.method, spec.check_hparams(self.hparams), self.max_epochs

    def _set_error(self, message: str | None) -> None:
        self.error = message
        self._ui.show_error(message)

    def _update_status(self, state: RunState | None = None, note: str | None = None) -> None:
        """Status line, progress bar and run id of ``state`` (default the current run)."""
        state = self._state if state is None else state
        if state is None:
            self._ui.show_status(status_label("idle", note), "")
        else:
            self._ui.show_status(state.status_line(note), BAR_STYLES.get(state.status, ""), state.progress, state.run_html())
