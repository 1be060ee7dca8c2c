"""The panel's controls come from the declared hyper-parameters: one per HParam, its range and default."""

from __future__ import annotations

import math

import ipywidgets as W
import pytest

import nbdistill as nd
from nbdistill.core.registry import HParam, Method
from nbdistill.widgets.controls import control_for, controls_for, default_method, plain, read_values, summary_html


def expect_range_and_default(hp: HParam, control: W.ValueWidget) -> None:
    """``control`` offers exactly ``hp``'s range and starts at its default."""
    assert control.description == hp.name
    if hp.choices is not None:
        assert isinstance(control, W.Dropdown) and list(control.options) == list(hp.choices)
        assert control.value == hp.default
    elif hp.type is bool:
        assert isinstance(control, W.Checkbox) and control.value is bool(hp.default)
    elif isinstance(control, W.FloatLogSlider):
        assert hp.log and (control.min, control.max) == pytest.approx((math.log10(hp.low), math.log10(hp.high)))
        assert control.value == pytest.approx(hp.default, rel=1e-6)
    elif isinstance(control, (W.FloatSlider, W.IntSlider)):
        assert (control.min, control.max) == (hp.low, hp.high) and control.value == hp.default
    elif isinstance(control, (W.BoundedFloatText, W.BoundedIntText)):
        if hp.low is not None:
            assert control.min == hp.low
        if hp.high is not None:
            assert control.max == hp.high
        assert control.value == hp.default
    else:
        assert isinstance(control, (W.FloatText, W.IntText, W.Text))
        assert hp.low is None and hp.high is None
        assert control.value == (hp.default if hp.type in (int, float) else str(hp.default))


@pytest.mark.parametrize("name", nd.methods())
def test_every_method_gets_one_control_per_hparam_with_its_range_and_default(name):
    spec = nd.get_method(name)
    controls = controls_for(spec)
    assert list(controls) == [hp.name for hp in spec.hparams]
    for hp in spec.hparams:
        expect_range_and_default(hp, controls[hp.name])
    assert spec.check_hparams(read_values(controls)) == spec.check_hparams({})  # the defaults pass the checks


def test_each_kind_of_declaration_gets_its_widget():
    cases = [
        (HParam("t", float, 4.0, 1.0, 20.0), W.FloatSlider),
        (HParam("lr", float, 1e-3, 1e-6, 1e-1, log=True), W.FloatLogSlider),
        (HParam("x", float, 0.5, 0.0, None), W.BoundedFloatText),
        (HParam("x", float, 0.5), W.FloatText),
        (HParam("n", int, 3, 1, 10), W.IntSlider),
        (HParam("n", int, 3, 1, 100_000), W.BoundedIntText),  # too many steps for a slider
        (HParam("n", int, 3), W.IntText),
        (HParam("flag", bool, True), W.Checkbox),
        (HParam("kind", str, "b", choices=("a", "b")), W.Dropdown),
        (HParam("name", str, "abc"), W.Text),
    ]
    for hp, widget in cases:
        control = control_for(hp)
        assert type(control) is widget, hp
        expect_range_and_default(hp, control)
        assert f"nbdistill-hparam-{hp.name}" in control._dom_classes


def method(*hparams: HParam, needs_teacher: bool = True) -> Method:
    return Method("toy.m", "toy", object, tuple(hparams), summary="A toy <method>.", needs_teacher=needs_teacher)


def test_kept_values_carry_over_only_where_declared_and_valid():
    spec = method(HParam("t", float, 4.0, 1.0, 20.0), HParam("a", float, 0.5, 0.0, 1.0), HParam("n", int, 2, 1, 5))
    controls = controls_for(spec, keep={"t": 8.0, "a": 3.0, "other": 1})
    assert read_values(controls) == {"t": 8.0, "a": 0.5, "n": 2}  # 3.0 is out of a's range: its default stays


def test_read_values_gives_plain_python():
    controls = controls_for(method(HParam("n", int, 2, 1, 5), HParam("x", float, 0.25, 0.0, 1.0), HParam("f", bool, False)))
    values = read_values(controls)
    assert values == {"n": 2, "x": 0.25, "f": False}
    assert [type(v) for v in values.values()] == [int, float, bool]
    assert plain(None) is None and plain("s") == "s"


def test_the_summary_is_escaped_and_warns_when_a_teacher_is_missing():
    assert "A toy &lt;method&gt;." in summary_html(method(), has_teacher=True)
    assert "needs a teacher" in summary_html(method(), has_teacher=False)
    assert "needs a teacher" not in summary_html(method(needs_teacher=False), has_teacher=False)


def test_the_default_method_is_the_first_lesson_or_one_that_fits_the_teacher():
    kd = nd.methods("kd")
    assert default_method(kd, has_teacher=True) == "kd.hinton"
    assert not nd.get_method(default_method(kd, has_teacher=False)).needs_teacher
