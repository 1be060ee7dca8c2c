"""The live training panel: method, hyper-parameters, Start/Stop, progress and a live figure.

    panel = nd.panel("kd", teacher=nd.zoo.teacher("digits-mlp"),
                     student=nd.models.MLP(64, [16], 10), data=nd.data.Digits())
    panel                      # shows it; or from code:
    panel.start(temperature=8) # same as clicking Start after moving the slider
    run = panel.wait()         # the finished (or stopped) run folder

Training runs in a background thread, so the cell returns at once and the notebook stays usable.
The training thread only appends each event to a list and stores the progress (an observer and a
callback of :func:`nbdistill.fit`); a ticker thread updates the progress widgets a few times a
second and asks for a figure at most ``redraw_hz`` times a second, only when new events came.
Figures are drawn by a worker process (:mod:`.render`), so matplotlib never holds the kernel's
GIL while training runs.
"""

from __future__ import annotations

import copy
import html
import math
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import ipywidgets as W

from ..core.errors import ConfigError, RunFolderError, TrainingFailed
from ..core.fit import build, check_data, fit
from ..core.logger import new_run_id
from ..core.registry import HParam, get_method, methods
from ..core.run import EventLog, Run
from ..core.runfolder import RUN_JSON
from ..core.runfolder import runs_root as default_runs_root
from ..core.views import get_view, views_for
from ..data.adapt import as_datamodule
from .render import Renderer, RenderError

STATUSES = ("idle", "running", "finished", "stopped", "failed")
#: Seconds between two updates of the progress bar and status line.
TICK = 0.25
#: Longest share of wall time the figure may cost the kernel when it is drawn in-process (no worker).
LOCAL_DUTY = 0.05
#: Longest share of wall time the drawing worker may be busy (it shares the CPU cores with training).
WORKER_DUTY = 0.25
FIGSIZE = (11.0, 3.6)
CONTROL_WIDTH = "340px"
DESCRIPTION_WIDTH = "120px"
STATUS_COLORS = {"idle": "#666", "running": "#1f6feb", "finished": "#1a7f37", "stopped": "#9a6700", "failed": "#cf222e"}


class Panel:
    """Controls, Start/Stop, progress and a live figure for training one family's methods.

    Args:
        family: the family whose methods the dropdown lists (``"kd"``).
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
        names = methods(family)
        if not names:
            raise ConfigError(f"family {family!r} has no registered methods")
        if student is None:
            raise ConfigError("the panel needs a student: pass student=... (e.g. nd.models.MLP(64, [32], 10))")
        if data is None:
            raise ConfigError("the panel needs data: pass data=... (e.g. nd.data.Digits())")
        if method is None:
            method = _default_method(names, teacher is not None)
        elif method not in names:
            get_method(method)  # an unknown name gets the registry's did-you-mean message
            raise ConfigError(f"{method!r} is not a {family} method; {family} has {names}")
        if not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1:
            raise ConfigError(f"max_epochs must be a positive integer, got {max_epochs!r}")
        if not redraw_hz > 0:
            raise ConfigError(f"redraw_hz must be positive, got {redraw_hz!r}")

        self.family = family
        self.teacher = teacher
        self.data = as_datamodule(data)  # (X, y), a dict of splits, a Dataset, PyG graphs: see nd.data.as_datamodule
        self.seed = seed
        self.runs_root = runs_root
        self.redraw_hz = float(redraw_hz)
        self._student = copy.deepcopy(student)  # pristine: every Start trains a copy of this

        self.status = "idle"
        self.error: str | None = None
        self.redraws = 0
        #: Every run this panel has made, oldest first (see :meth:`overlay`).
        self.runs: list[Run] = []
        self._run: Run | None = None
        self._run_id: str | None = None
        self._run_root: Path | None = None
        self._method_running: str | None = None
        self._events: list[dict] = []
        self._scanned, self._latest_values = 0, {}
        self._progress = (0, 0)
        self._phase: tuple[str, int | None, int | None] | None = None
        self._max_epochs_running = max_epochs
        self._started = 0.0
        self._ended: float | None = None
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._log = EventLog()
        self._controls: dict[str, W.ValueWidget] = {}

        self.renderer = Renderer(figsize, dpi, process=render_process)
        self._finalizer = weakref.finalize(self, self.renderer.close)
        self._build_widgets(names, method, max_epochs, figsize, dpi)

    # -- public API ---------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The method selected in the dropdown."""
        return self._method_dropdown.value

    @property
    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters the controls hold now."""
        return {name: _plain(control.value) for name, control in self._controls.items()}

    @property
    def max_epochs(self) -> int:
        return int(self._epochs.value)

    @property
    def run(self) -> Run | None:
        """The run folder of the current (or last) run, once training has created it."""
        if self._run is None and self._run_id is not None:
            folder = self._run_root / self._run_id
            if (folder / RUN_JSON).exists():
                try:
                    self._run = Run(folder)
                except RunFolderError:  # run.json being replaced this instant
                    return None
        return self._run

    @property
    def log(self) -> EventLog:
        """Every event of the current run received so far."""
        events = self._events
        if len(self._log) > len(events):
            self._log = EventLog()
        self._log.extend(events[len(self._log) : len(events)])
        return self._log

    @property
    def png(self) -> bytes:
        """The PNG the live figure shows now."""
        return bytes(self._figure.value)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, **overrides: Any) -> None:
        """Start a run, as clicking Start does; ``overrides`` are set on the controls first.

        Besides the method's hyper-parameters, ``overrides`` may hold ``method`` and ``max_epochs``.
        Bad input (an unknown name, a value out of range, models that do not fit the data) is
        shown in the error box and in :attr:`error`, and no run starts.
        """
        if self.running:
            raise RuntimeError("a run is already going: stop() it or wait() for it first")
        self._set_error(None)
        try:
            method, hparams, max_epochs = self._apply(overrides)
            student = copy.deepcopy(self._student)
            module = build(method, student, self.teacher, **hparams)
            check_data(module, self.data)
        except ConfigError as exc:
            self._set_error(str(exc))
            return
        del module

        self._run, self._run_id = None, new_run_id(method)
        self._run_root = default_runs_root(self.runs_root).resolve()
        self._method_running = method
        self._max_epochs_running = max_epochs
        self._events = []
        self._scanned, self._latest_values = 0, {}
        self._log = EventLog()
        self._progress = (0, 0)
        self._phase = None
        self.redraws = 0
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._started, self._ended = time.monotonic(), None
        self.status = "running"
        self.renderer.reset(method, views_for(method))
        self._set_running_ui(True)
        self._update_status()
        kwargs = dict(student=student, teacher=self.teacher, max_epochs=max_epochs, **hparams)
        self._thread = threading.Thread(target=self._train, args=(method, kwargs), name="nbdistill-panel-train", daemon=True)
        self._ticker = threading.Thread(target=self._tick, name="nbdistill-panel-redraw", daemon=True)
        self._ticker.start()  # before the training thread, which joins it when the run ends (at once, if it fails)
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to stop after its current batch; it becomes ``stopped``, with a checkpoint."""
        if self.running:
            self._stop_event.set()
            self._stop_button.disabled = True
            self._update_status(note="stopping…")

    def wait(self, timeout: float | None = None) -> Run | None:
        """Wait for the run to end (its final figure drawn); return :attr:`run`."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.run

    def overlay(self, stage: str = "val", figsize: tuple[float, float] = (7.0, 4.0)):
        """The teacher–student gap of every run of this panel, overlaid on one matplotlib Figure:
        each run's student accuracy (solid) and agreement with the teacher (dotted) over training,
        the teacher's accuracy dashed (the ``gap_overlay`` view). Runs are labelled by method, and
        by their hyper-parameters where several runs share a method."""
        from matplotlib.figure import Figure

        methods = [r.method for r in self.runs]
        logs = {}
        for i, r in enumerate(self.runs):
            label = r.method
            if methods.count(r.method) > 1:
                label += " " + ", ".join(f"{k}={_plain(v)}" for k, v in r.hparams.items() if k not in ("lr", "weight_decay"))
            if label in logs:
                label += f" #{i + 1}"
            logs[label] = r.log
        fig = Figure(figsize=figsize)
        get_view("gap_overlay")(fig.subplots(), logs, stage)
        fig.tight_layout()
        return fig

    def close(self) -> None:
        """Stop any run, end the drawing worker and close the widgets."""
        self.stop()
        self.wait(timeout=30)
        self._finalizer()
        _close_tree(self.widget)

    def redraw(self, final: bool = False) -> None:
        """Draw the live figure now (from the events received so far); ``final``: every view with
        margins fitted to its labels, as at the end of a run (live redraws may reuse margins)."""
        if self._method_running is None:
            self._figure.value = self.renderer.placeholder(self.method, views_for(self.method), self._title())
            return
        try:
            png = self.renderer.draw(self._events, self._title(), fit=final)
        except RenderError as exc:
            self._set_error(f"the figure could not be drawn: {exc}")
            return
        self._figure.value = png
        self.redraws += 1

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"Panel({self.family!r}, method={self.method!r}, status={self.status!r})"

    # -- training and ticker threads ----------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        """Observer of the run's logger, on the training thread: one list append, nothing else."""
        self._events.append(event)

    def _on_progress(self, done: int, total: int, metrics: dict) -> None:
        """Progress callback, on the training thread after each batch (and each epoch of a phase
        before training, such as GLNN's own teacher: ``metrics["phase"]``)."""
        if metrics and metrics.get("phase"):
            self._phase = (str(metrics["phase"]), metrics.get("epoch"), metrics.get("epochs"))
        else:
            self._phase = None
            self._progress = (done, total)

    def _train(self, method: str, kwargs: dict[str, Any]) -> None:
        try:
            run = fit(
                method,
                data=self.data,
                seed=self.seed,
                runs_root=self._run_root,
                run_id=self._run_id,
                observers=[self._on_event],
                stop_event=self._stop_event,
                progress=self._on_progress,
                **kwargs,
            )
            self._run = run
            self.status = run.status if run is not None and run.status in STATUSES else "finished"
        except TrainingFailed as exc:
            self._run = exc.run
            self.status = "failed"
            self._set_error(str(exc))
        except ConfigError as exc:
            self.status = "failed" if self.run is not None else "idle"
            self._set_error(str(exc))
        except BaseException as exc:  # noqa: BLE001 (the thread must end with a final figure and a status)
            self.status = "failed"
            self._set_error(f"{type(exc).__name__}: {exc}")
        finally:
            if self.run is not None:
                self.runs.append(self.run)
            self._ended = time.monotonic()
            self._done.set()
            if self._ticker is not None:
                self._ticker.join()
            self._safe_redraw(final=True)
            self._update_status()
            self._set_running_ui(False)

    def _safe_redraw(self, final: bool = False) -> None:
        """:meth:`redraw` from a thread: a figure that cannot be drawn is reported, never fatal."""
        try:
            self.redraw(final)
        except Exception as exc:  # noqa: BLE001 (shown in the error box; training goes on)
            self._set_error(f"the figure could not be drawn: {type(exc).__name__}: {exc}")

    def _tick(self) -> None:
        period = 1.0 / self.redraw_hz
        next_draw = time.monotonic() + period
        drawn = 0
        while not self._done.wait(min(TICK, period)):
            self._update_status()
            now = time.monotonic()
            if now < next_draw or len(self._events) == drawn:
                continue
            drawn = len(self._events)
            self._safe_redraw()
            duty = LOCAL_DUTY if self.renderer.in_process else WORKER_DUTY
            next_draw = max(now + period, time.monotonic() + self.renderer.last_cost * (1 / duty - 1))

    # -- widgets ------------------------------------------------------------------------------
    def _build_widgets(self, names: list[str], method: str, max_epochs: int, figsize, dpi: int) -> None:
        wide = W.Layout(width=CONTROL_WIDTH)
        style = {"description_width": DESCRIPTION_WIDTH}
        self._title_html = W.HTML(f"<b style='font-size:1.15em'>nbdistill</b> &nbsp;·&nbsp; {html.escape(self.family)} panel")
        self._method_dropdown = W.Dropdown(options=names, value=method, description="method", layout=wide, style=style)
        self._summary = W.HTML(layout=W.Layout(margin="0 0 0 12px"))
        self._hparam_box = W.GridBox(
            layout=W.Layout(grid_template_columns=f"repeat(auto-fill, {CONTROL_WIDTH})", grid_gap="2px 12px")
        )
        self._epochs = W.BoundedIntText(
            value=max_epochs, min=1, max=100_000, description="max epochs", layout=W.Layout(width="230px"), style=style
        )
        self._start_button = W.Button(
            description="Start", icon="play", button_style="success", tooltip="train a fresh copy of the student"
        )
        self._stop_button = W.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="stop after the current batch (the run keeps a checkpoint)",
        )
        self._bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="280px"))
        self._status_html = W.HTML(layout=W.Layout(margin="0 0 0 10px"))
        self._run_html = W.HTML()
        self._error_html = W.HTML(layout=W.Layout(display="none"))
        width_px = round(figsize[0] * dpi)
        self._figure = W.Image(format="png", layout=W.Layout(width=f"{width_px}px", max_width="100%", height="auto"))

        self._start_button.on_click(lambda _: self._click_start())
        self._stop_button.on_click(lambda _: self.stop())
        self._method_dropdown.observe(self._on_method_change, names="value")

        self._start_button.add_class("nbdistill-start")
        self._stop_button.add_class("nbdistill-stop")
        self._status_html.add_class("nbdistill-status")
        self._run_html.add_class("nbdistill-run-id")
        self._error_html.add_class("nbdistill-error")
        self._figure.add_class("nbdistill-figure")

        row = {"align_items": "center"}
        self.widget = W.VBox(
            [
                self._title_html,
                W.HBox([self._method_dropdown, self._summary], layout=W.Layout(**row)),
                self._hparam_box,
                W.HBox([self._epochs, self._start_button, self._stop_button], layout=W.Layout(**row, grid_gap="8px")),
                W.HBox([self._bar, self._status_html], layout=W.Layout(**row, margin="2px 0 0 4px")),
                self._run_html,
                self._error_html,
                self._figure,
            ],
            layout=W.Layout(width="100%", max_width=f"{width_px + 24}px", padding="8px 10px", border="1px solid #d0d7de"),
        )
        self.widget.add_class("nbdistill-panel")
        self._rebuild_controls(method)
        self._update_status()
        self.redraw()

    def _click_start(self) -> None:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 (a button has nowhere else to report)
            self._set_error(f"{type(exc).__name__}: {exc}")

    def _on_method_change(self, change: dict) -> None:
        self._set_error(None)
        self._rebuild_controls(change["new"])
        if not self.running and self._method_running is None:
            self.redraw()

    def _rebuild_controls(self, method: str) -> None:
        spec = get_method(method)
        old = self.hparams if self._controls else {}
        controls = {}
        for hp in spec.hparams:
            control = control_for(hp)
            if hp.name in old:
                try:
                    control.value = hp.check(old[hp.name], method)
                except ConfigError:
                    pass
            controls[hp.name] = control
        self._controls = controls
        self._hparam_box.children = tuple(controls.values())
        summary = html.escape(spec.summary)
        if spec.needs_teacher and self.teacher is None:
            summary += " <span style='color:#cf222e'>(needs a teacher: pass teacher=...)</span>"
        self._summary.value = f"<span style='color:#444'>{summary}</span>"

    def _apply(self, overrides: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        """Check ``overrides``, set them on the controls, and return method, hyper-parameters, epochs."""
        overrides = dict(overrides)
        method = overrides.pop("method", None)
        if method is not None:
            names = list(self._method_dropdown.options)
            if method not in names:
                get_method(method)
                raise ConfigError(f"{method!r} is not a {self.family} method; {self.family} has {names}")
            self._method_dropdown.value = method
        max_epochs = overrides.pop("max_epochs", None)
        if max_epochs is not None:
            if not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1:
                raise ConfigError(f"max_epochs must be a positive integer, got {max_epochs!r}")
            self._epochs.value = max_epochs
        spec = get_method(self.method)
        checked = spec.check_hparams(overrides)  # unknown names and out-of-range values raise here
        for name in overrides:
            self._controls[name].value = checked[name]
        return self.method, spec.check_hparams(self.hparams), self.max_epochs

    def _set_running_ui(self, running: bool) -> None:
        self._start_button.disabled = running
        self._stop_button.disabled = not running
        self._method_dropdown.disabled = running
        self._epochs.disabled = running
        for control in self._controls.values():
            control.disabled = running

    def _set_error(self, message: str | None) -> None:
        self.error = message
        if message is None:
            self._error_html.value = ""
            self._error_html.layout.display = "none"
            return
        self._error_html.value = (
            "<div style='color:#cf222e;background:#ffebe9;border:1px solid #ff8182;border-radius:4px;"
            "padding:6px 10px;white-space:pre-wrap;font-family:var(--jp-code-font-family,monospace);"
            f"font-size:0.9em'><b>Error:</b> {html.escape(message)}</div>"
        )
        self._error_html.layout.display = "block"

    def _latest(self, name: str) -> float | None:
        """Last value of scalar ``name`` in the current run (scans only the events not seen before)."""
        events, seen = self._events, self._scanned
        if seen > len(events):
            seen, self._latest_values = 0, {}
        for event in events[seen : len(events)]:
            if event.get("kind") == "scalar":
                self._latest_values[event["name"]] = event.get("value")
        self._scanned = len(events)
        return self._latest_values.get(name)

    def _title(self) -> str:
        if self._method_running is None:
            return f"{self.method} (not started)"
        step = self._progress[0]
        return f"{self._method_running} — {self._run_id} ({self.status}, step {step})"

    def _update_status(self, note: str | None = None) -> None:
        done, total = self._progress
        status = self.status
        parts = [f"<b style='color:{STATUS_COLORS.get(status, '#666')}'>{note or status}</b>"]
        phase = self._phase
        if self._method_running is not None and phase is not None and status == "running":
            name, epoch, epochs = phase
            parts.append(f"{name} epoch {epoch}/{epochs}" if epoch is not None else name)
        elif self._method_running is not None:
            epochs = self._max_epochs_running
            parts.append(f"step {done}/{total or '?'}")
            if total:
                per_epoch = max(1, math.ceil(total / epochs))
                parts.append(f"epoch {min(epochs, done // per_epoch + 1)}/{epochs}")
            end = self._ended if self._ended is not None else time.monotonic()
            parts.append(f"{end - self._started:.0f} s")
            acc = self._latest("val/student_acc")
            if acc is not None:
                parts.append(f"val student acc {acc:.3f}")
        text = " &nbsp;·&nbsp; ".join(parts)
        if self._status_html.value != text:
            self._status_html.value = text
        if total and (self._bar.max != total or self._bar.value != min(done, total)):
            self._bar.max = total
            self._bar.value = min(done, total)
        style = {"running": "info", "finished": "success", "stopped": "warning", "failed": "danger"}.get(status, "")
        if self._bar.bar_style != style:
            self._bar.bar_style = style
        if self._run_id is not None:
            where = html.escape(str(self._run_root / self._run_id))
            run_text = (
                f"<span style='color:#555;font-size:0.9em'>run <code title='{where}'>{html.escape(self._run_id)}</code></span>"
            )
            if self._run_html.value != run_text:
                self._run_html.value = run_text


def control_for(hp: HParam) -> W.ValueWidget:
    """The widget for a declared hyper-parameter: slider, log slider, checkbox, dropdown or text."""
    common = {
        "description": hp.name,
        "tooltip": hp.help or hp.name,
        "style": {"description_width": DESCRIPTION_WIDTH},
        "layout": W.Layout(width=CONTROL_WIDTH),
    }
    bounded = hp.low is not None and hp.high is not None
    if hp.choices is not None:
        control = W.Dropdown(options=list(hp.choices), value=hp.default, **common)
    elif hp.type is bool:
        control = W.Checkbox(value=bool(hp.default), indent=False, **common)
    elif hp.type is float and bounded and hp.log and hp.low > 0:
        control = W.FloatLogSlider(
            value=hp.default,
            base=10,
            min=math.log10(hp.low),
            max=math.log10(hp.high),
            step=0.1,
            readout_format=".3g",
            continuous_update=False,
            **common,
        )
    elif hp.type is float and bounded:
        step = 10 ** math.floor(math.log10((hp.high - hp.low) / 100)) if hp.high > hp.low else 0.1
        decimals = max(0, -math.floor(math.log10(step)))
        control = W.FloatSlider(
            value=hp.default,
            min=hp.low,
            max=hp.high,
            step=step,
            readout_format=f".{decimals}f",
            continuous_update=False,
            **common,
        )
    elif hp.type is float:
        bounds = {k: v for k, v in (("min", hp.low), ("max", hp.high)) if v is not None}
        control = (W.BoundedFloatText if bounds else W.FloatText)(value=hp.default, **bounds, **common)
    elif hp.type is int and bounded and hp.high - hp.low <= 1000:
        control = W.IntSlider(value=hp.default, min=int(hp.low), max=int(hp.high), continuous_update=False, **common)
    elif hp.type is int:
        bounds = {k: int(v) for k, v in (("min", hp.low), ("max", hp.high)) if v is not None}
        control = (W.BoundedIntText if bounds else W.IntText)(value=hp.default, **bounds, **common)
    else:
        control = W.Text(value=str(hp.default), **common)
    control.add_class(f"nbdistill-hparam-{hp.name}")
    return control


#: The method a family's panel opens with, where the first in alphabetical order is not the
#: natural first lesson.
FIRST_METHODS = {"kd": "kd.hinton"}


def _default_method(names: list[str], has_teacher: bool) -> str:
    first = FIRST_METHODS.get(names[0].split(".")[0])
    if first in names and get_method(first).needs_teacher == has_teacher:
        return first
    for name in names:
        if get_method(name).needs_teacher == has_teacher:
            return name
    return names[0]


def _plain(value: Any) -> Any:
    """Widget values as plain Python (a slider may hold a numpy or rounded float)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _close_tree(widget: W.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
