"""The panel's widgets: built once, laid out, and shown what the panel tells them.

:class:`PanelLayout` holds every ipywidget of a :class:`~.panel.Panel` (title, method dropdown,
hyper-parameter grid, epochs, Start/Stop, progress bar, status line, run id, error box, figure)
and the few ways they change; the panel decides what they show. CSS classes (``nbdistill-start``,
``nbdistill-status``, …) name the parts for the browser tests and the lab's styles.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as W

from .controls import CONTROL_WIDTH, DESCRIPTION_WIDTH

ERROR_STYLE = (
    "color:#cf222e;background:#ffebe9;border:1px solid #ff8182;border-radius:4px;padding:6px 10px;"
    "white-space:pre-wrap;font-family:var(--jp-code-font-family,monospace);font-size:0.9em"
)


class PanelLayout:
    """Every widget of one panel; :attr:`box` is the top ``VBox`` a notebook displays."""

    def __init__(self, family: str, names: list[str], method: str, max_epochs: int, figsize, dpi: int):
        wide = W.Layout(width=CONTROL_WIDTH)
        style = {"description_width": DESCRIPTION_WIDTH}
        self.title = W.HTML(f"<b style='font-size:1.15em'>nbdistill</b> &nbsp;·&nbsp; {html.escape(family)} panel")
        self.method_dropdown = W.Dropdown(options=names, value=method, description="method", layout=wide, style=style)
        self.summary = W.HTML(layout=W.Layout(margin="0 0 0 12px"))
        self.hparam_box = W.GridBox(
            layout=W.Layout(grid_template_columns=f"repeat(auto-fill, {CONTROL_WIDTH})", grid_gap="2px 12px")
        )
        self.epochs = W.BoundedIntText(
            value=max_epochs, min=1, max=100_000, description="max epochs", layout=W.Layout(width="230px"), style=style
        )
        self.start_button = W.Button(
            description="Start", icon="play", button_style="success", tooltip="train a fresh copy of the student"
        )
        self.stop_button = W.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="stop after the current batch (the run keeps a checkpoint)",
        )
        self.bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="280px"))
        self.status_html = W.HTML(layout=W.Layout(margin="0 0 0 10px"))
        self.run_html = W.HTML()
        self.error_html = W.HTML(layout=W.Layout(display="none"))
        width_px = round(figsize[0] * dpi)
        self.figure = W.Image(format="png", layout=W.Layout(width=f"{width_px}px", max_width="100%", height="auto"))
        for widget, name in (
            (self.start_button, "start"),
            (self.stop_button, "stop"),
            (self.status_html, "status"),
            (self.run_html, "run-id"),
            (self.error_html, "error"),
            (self.figure, "figure"),
        ):
            widget.add_class(f"nbdistill-{name}")

        row = {"align_items": "center"}
        self.box = W.VBox(
            [
                self.title,
                W.HBox([self.method_dropdown, self.summary], layout=W.Layout(**row)),
                self.hparam_box,
                W.HBox([self.epochs, self.start_button, self.stop_button], layout=W.Layout(**row, grid_gap="8px")),
                W.HBox([self.bar, self.status_html], layout=W.Layout(**row, margin="2px 0 0 4px")),
                self.run_html,
                self.error_html,
                self.figure,
            ],
            layout=W.Layout(width="100%", max_width=f"{width_px + 24}px", padding="8px 10px", border="1px solid #d0d7de"),
        )
        self.box.add_class("nbdistill-panel")

    def show_controls(self, controls: Mapping[str, W.ValueWidget], summary: str) -> None:
        self.hparam_box.children = tuple(controls.values())
        self.summary.value = summary

    def set_running(self, running: bool) -> None:
        """Start off and Stop on while a run goes (and every input locked), the reverse after."""
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        self.method_dropdown.disabled = running
        self.epochs.disabled = running
        for control in self.hparam_box.children:
            control.disabled = running

    def show_error(self, message: str | None) -> None:
        """Show ``message`` in the error box, or hide the box for ``None``."""
        if message is None:
            self.error_html.value = ""
            self.error_html.layout.display = "none"
            return
        self.error_html.value = f"<div style='{ERROR_STYLE}'><b>Error:</b> {html.escape(message)}</div>"
        self.error_html.layout.display = "block"

    def show_status(
        self, text: str, bar_style: str, progress: tuple[int, int] | None = None, run_html: str | None = None
    ) -> None:
        """Status line, progress bar and run id; each widget is touched only when it changes
        (every change is a message to the browser)."""
        if self.status_html.value != text:
            self.status_html.value = text
        if progress is not None:
            done, total = progress
            if total and (self.bar.max != total or self.bar.value != min(done, total)):
                self.bar.max = total
                self.bar.value = min(done, total)
        if self.bar.bar_style != bar_style:
            self.bar.bar_style = bar_style
        if run_html is not None and self.run_html.value != run_html:
            self.run_html.value = run_html

    def close(self) -> None:
        _close_tree(self.box)


def _close_tree(widget: W.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
