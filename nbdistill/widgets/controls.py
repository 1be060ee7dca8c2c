"""The panel's hyper-parameter controls, built from a method's declared :class:`~nbdistill.core.registry.HParam`\\ s.

One control per declared hyper-parameter, in declaration order: a slider (log-scaled where the
declaration says ``log``) for a bounded number, a bounded text box for a half-bounded one, a
checkbox for a bool, a dropdown for declared choices, a text box otherwise. The control's range
and default are the declaration's, so the panel can never offer a value that training refuses.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ..core.errors import ConfigError
from ..core.registry import HParam, Method, get_method

CONTROL_WIDTH = "340px"
DESCRIPTION_WIDTH = "120px"
#: The method a family's panel opens with, where the first in alphabetical order is not the
#: natural first lesson.
FIRST_METHODS = {"kd": "kd.hinton"}


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


def controls_for(spec: Method, keep: Mapping[str, Any] | None = None) -> dict[str, W.ValueWidget]:
    """One control per hyper-parameter ``spec`` declares, by name, in declaration order.

    A value in ``keep`` (the controls of the method shown before) is carried over where this
    method declares the same name and the value passes its check; otherwise the default stays."""
    keep = keep or {}
    controls = {}
    for hp in spec.hparams:
        control = control_for(hp)
        if hp.name in keep:
            try:
                control.value = hp.check(keep[hp.name], spec.name)
            except ConfigError:
                pass
        controls[hp.name] = control
    return controls


def read_values(controls: Mapping[str, W.ValueWidget]) -> dict[str, Any]:
    """The values the controls hold now, as plain Python."""
    return {name: plain(control.value) for name, control in controls.items()}


def summary_html(spec: Method, has_teacher: bool) -> str:
    """The method's one-line summary, with a warning when it needs a teacher the panel lacks."""
    summary = html.escape(spec.summary)
    if spec.needs_teacher and not has_teacher:
        summary += " <span style='color:#cf222e'>(needs a teacher: pass teacher=...)</span>"
    return f"<span style='color:#444'>{summary}</span>"


def default_method(names: list[str], has_teacher: bool) -> str:
    """The method a panel of ``names`` opens with: the family's first lesson, else its first method
    that uses a teacher when one is given (that needs none when none is)."""
    first = FIRST_METHODS.get(names[0].split(".")[0])
    if first in names and get_method(first).needs_teacher == has_teacher:
        return first
    for name in names:
        if get_method(name).needs_teacher == has_teacher:
            return name
    return names[0]


def check_max_epochs(max_epochs: Any) -> None:
    """The epochs box's value, or ``max_epochs=`` given to the panel, is a positive integer."""
    if not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1:
        raise ConfigError(f"max_epochs must be a positive integer, got {max_epochs!r}")


def plain(value: Any) -> Any:
    """Widget values as plain Python (a slider may hold a numpy or rounded float)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value
