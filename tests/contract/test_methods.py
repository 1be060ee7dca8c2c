"""The family contract, for every registered method (today's and any added later, with no new test):
one epoch of ``nd.fit`` on its family's tiny default, an out-of-range hyper-parameter refused before
training, a headless panel with a control per declared hyper-parameter, a CLI config round trip,
and every registered view drawn from the run. The defaults live in ``family_defaults.py``."""

from __future__ import annotations

import json
import math

import ipywidgets as W
import pytest
import pytorch_lightning as pl
import yaml
from family_defaults import FAMILY_DEFAULTS, instantiate, setting_for
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill import cli

METHODS = nd.methods()
#: the run of each method's one-epoch fit, shared by the fit and views tests. Training every method
#: (twice, with the CLI) takes minutes on two busy cores, so those tests are ``slow``; the refusal
#: and panel tests build everything but train nothing and stay in the quick suite.
_RUNS: dict[str, nd.runs.Run] = {}


def _setting(method):
    try:
        return setting_for(method)
    except LookupError as exc:
        pytest.fail(str(exc))


def _models(method):
    s = _setting(method)
    teacher = s.teacher_for(method)
    return instantiate(s.student), instantiate(teacher) if teacher else None, instantiate(s.data)


def _run_folders(root):
    """Run folders under ``root`` (the dataset family's shared expert buffer is not one)."""
    return sorted(p for p in root.iterdir() if p.name != "experts") if root.exists() else []


def _fitted(method, tmp_path_factory):
    if method not in _RUNS:
        student, teacher, data = _models(method)
        root = tmp_path_factory.mktemp("contract-runs")
        _RUNS[method] = nd.fit(
            method, student=student, teacher=teacher, data=data, max_epochs=1, runs_root=root, **_setting(method).hparams(method)
        )
    return _RUNS[method]


def _beyond(hp):
    """A value just outside ``hp``'s declared range."""
    if hp.high is not None:
        value = hp.high + 1 if hp.type is int else hp.high + abs(hp.high) + 1.0
    else:
        value = hp.low - 1 if hp.type is int else hp.low - abs(hp.low) - 1.0
    return hp.type(value)


def _same(a, b):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12) if isinstance(b, float) else a == b


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_every_family_has_a_default():
    missing = sorted(set(nd.family_names()) - set(FAMILY_DEFAULTS))
    assert not missing, f"add a tiny default for the families {missing} to FAMILY_DEFAULTS in tests/contract/family_defaults.py"


def test_a_family_without_a_default_fails_naming_the_fix(monkeypatch):
    import family_defaults

    monkeypatch.delitem(family_defaults.FAMILY_DEFAULTS, "kd")
    with pytest.raises(LookupError, match=r"family 'kd' \(method kd.hinton\) has no entry in FAMILY_DEFAULTS"):
        setting_for("kd.hinton")


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_one_epoch_fit_on_the_family_default(method, tmp_path_factory):
    run = _fitted(method, tmp_path_factory)
    assert run.status == "finished", run.error
    assert run.method == method
    assert run.hparams.items() >= _setting(method).hparams(method).items()
    tested = {k: v for k, v in run.metrics.items() if k.startswith("test/")}  # each family's evaluation hook names its own
    assert tested and all(math.isfinite(v) for v in tested.values()), tested


@pytest.mark.parametrize("method", METHODS)
def test_summary_is_a_whole_sentence(method):
    """The panel, the CLI and the tutorials show a method by its summary (its docstring's first
    paragraph): a sentence cut at a line end reads as a broken description."""
    summary = nd.get_method(method).summary
    assert summary and summary.rstrip().endswith((".", ")", ".)")), f"{method}'s summary is cut short: {summary!r}"


@pytest.mark.parametrize("method", METHODS)
def test_declaration_signature_and_defaults_agree(method):
    """The hyper-parameters are declared once: the registry's list, the module's ``__init__``
    signature (which LightningCLI reads) and what ``save_hyperparameters`` records all come from it."""
    import inspect
    import typing

    spec = nd.get_method(method)
    cls = spec.module_class
    assert getattr(cls.__init__, "_declared", False), f"{cls.__name__} writes its own __init__: declare HParam class attributes"
    params = inspect.signature(cls.__init__).parameters
    assert list(params)[:4] == ["self", "student", "teacher", "teachers"]
    declared = {h.name: h for h in spec.hparams}
    assert list(params)[4:] == list(declared), "the signature lists exactly the declared hyper-parameters, in order"
    hints = typing.get_type_hints(cls.__init__)
    for name, hp in declared.items():
        assert getattr(cls, name) is hp, f"{name} is a class attribute of {cls.__name__}"
        assert params[name].default == hp.default and hints[name] is hp.type, name
        assert hp.help, f"{method}: {name} has no help text (the panel's tooltip and the CLI's --help)"
    student, teacher, _ = _models(method)
    module = cls(student, teacher)
    assert dict(module.hparams) == spec.defaults(), "save_hyperparameters records the declared defaults"
    for name, value in spec.defaults().items():
        assert getattr(module, name) == value


@pytest.mark.parametrize("method", METHODS)
def test_out_of_range_hparam_is_refused_before_training(method, runs_root, monkeypatch):
    spec = nd.get_method(method)
    from nbdistill.core.module import DistillModule

    common = {h.name for h in (DistillModule.lr, DistillModule.weight_decay)}
    bounded = [h for h in spec.hparams if h.type in (int, float) and (h.low is not None or h.high is not None)]
    if not bounded:
        pytest.fail(f"{method} declares no hyper-parameter with a range")
    hp = next((h for h in bounded if h.name not in common), bounded[0])
    student, teacher, data = _models(method)

    def no_training(*args, **kwargs):
        raise AssertionError("Trainer.fit was called despite an out-of-range hyper-parameter")

    monkeypatch.setattr(pl.Trainer, "fit", no_training)
    with pytest.raises(nd.ConfigError, match=rf"{method}: hyper-parameter '{hp.name}' = .* is outside its range"):
        nd.fit(method, student=student, teacher=teacher, data=data, max_epochs=1, **{hp.name: _beyond(hp)})
    assert _run_folders(runs_root) == []


@pytest.mark.parametrize("method", METHODS)
def test_panel_selects_the_method_and_shows_a_control_per_hparam(method, tmp_path):
    spec = nd.get_method(method)
    student, teacher, data = _models(method)
    panel = nd.panel(spec.family, student=student, teacher=teacher, data=data, runs_root=tmp_path, render_process=False)
    try:
        first = nd.get_method(panel.method)  # the family's first lesson
        (dropdown,) = [w for w in _walk(panel.widget) if isinstance(w, W.Dropdown) and w.description == "method"]
        assert list(dropdown.options) == nd.methods(spec.family)
        dropdown.value = method  # as a user picks it
        assert panel.method == method and panel.error is None
        controls = {}
        for widget in _walk(panel.widget):
            for cls in getattr(widget, "_dom_classes", ()):
                if cls.startswith("nbdistill-hparam-"):
                    controls[cls.removeprefix("nbdistill-hparam-")] = widget
        assert sorted(controls) == sorted(h.name for h in spec.hparams)
        kept = {h.name for h in first.hparams} if first.name != method else set()  # the panel keeps shared values
        for hp in spec.hparams:
            shown = hp.check(controls[hp.name].value, method)  # in range and of the declared type
            if hp.name not in kept:
                assert _same(shown, hp.default), f"{hp.name}: the control shows {shown!r}, the default is {hp.default!r}"
        assert sorted(spec.check_hparams(panel.hparams)) == sorted(controls)  # what Start would train with is accepted
    finally:
        panel.close()


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_cli_config_round_trip(method, tmp_path, runs_root):
    spec, setting = nd.get_method(method), _setting(method)
    model = {"student": setting.student, **setting.hparams(method)}
    if setting.teacher_for(method):
        model["teacher"] = setting.teacher_for(method)
    config = {
        "method": method,
        "seed_everything": 0,
        "model": model,
        "data": setting.data,
        "trainer": {"enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["fit", "--config", str(path), "--trainer.max_epochs", "1"]) == 0
    (folder,) = _run_folders(runs_root)
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "finished" and info["method"] == method
    expected = {**spec.defaults(), **setting.hparams(method)}
    for name, value in expected.items():
        assert _same(info["hparams"][name], value), f"run.json has {name}={info['hparams'].get(name)!r}, expected {value!r}"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_views_draw_from_the_run(method, tmp_path_factory):
    from nbdistill.widgets.views import VIEWS

    run = _fitted(method, tmp_path_factory)
    assert isinstance(run.plot(), Figure)
    views = nd.get_method(method).views
    unknown = [v for v in views if v not in VIEWS]
    assert not unknown, f"{method} declares views that are not registered: {unknown}"
    for name in views:
        ax = Figure().subplots()
        assert VIEWS[name](ax, run.log) is ax, f"view {name!r} must return the Axes it drew on"
