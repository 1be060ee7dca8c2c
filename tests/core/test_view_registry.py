"""The view registry in core: ``@view`` records drawing functions, ``get_view`` finds them (loading
the families when needed), and ``Run.plot`` gets its drawer from the registry, not from the widgets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from nbdistill.core import views as registry
from nbdistill.core.errors import ConfigError
from nbdistill.core.figure import ShownFigure
from nbdistill.core.logger import RunLogger
from nbdistill.core.run import EventLog, Run
from nbdistill.core.style import empty


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def _run(root) -> Run:
    logger = RunLogger(root=root, run_id="r1", method="kd.hinton", flush_every=0.0)
    for step in range(3):
        logger.log_metrics({"train/loss": 1.0 / (step + 1), "epoch": 0}, step=step)
    logger.experiment.set_status("finished")
    logger.experiment.close()
    return Run(root / "r1")


@pytest.fixture
def scratch(monkeypatch):
    """Registrations made by a test are taken back after it."""
    monkeypatch.setattr(registry, "_VIEWS", dict(registry._VIEWS))
    monkeypatch.setattr(registry, "VIEWS", registry.MappingProxyType(registry._VIEWS))
    monkeypatch.setattr(registry, "_DRAWER", list(registry._DRAWER))


def test_view_registers_the_function_unchanged_and_the_mapping_is_read_only(scratch):
    def mine(ax, log):
        return empty(ax, "mine")

    assert registry.view("test_mine")(mine) is mine
    assert registry.get_view("test_mine") is mine and registry.VIEWS["test_mine"] is mine
    ax = Figure().subplots()
    assert registry.get_view("test_mine")(ax, EventLog()) is ax and ax.texts[0].get_text() == "waiting for data…"
    with pytest.raises(TypeError):
        registry.VIEWS["test_mine"] = mine  # type: ignore[index]


def test_a_taken_name_is_refused_and_the_same_function_again_is_not(scratch):
    def first(ax, log):
        return ax

    def second(ax, log):
        return ax

    registry.view("test_taken")(first)
    registry.view("test_taken")(first)  # a module imported twice (the drawing worker) registers again
    with pytest.raises(ValueError, match="view 'test_taken' is already registered by .*first"):
        registry.view("test_taken")(second)
    with pytest.raises(ValueError, match="non-empty string"):
        registry.view("")


def test_an_unknown_view_is_a_config_error_naming_it_and_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown view\(s\) \['no_such_view'\]; known: \[.*'losses'"):
        registry.get_view("no_such_view")
    with pytest.raises(ValueError):  # ConfigError is a ValueError, as the old message was
        registry.check_views(["losses", "no_such_view"])


def test_every_view_a_method_declares_is_registered():
    from nbdistill.core.registry import get_method, methods

    for method in methods():
        for name in get_method(method).views:
            assert callable(registry.get_view(name)), (method, name)


def test_a_family_view_is_found_in_a_fresh_process_without_importing_the_family_first():
    out = _fresh(
        "import sys\n"
        "from nbdistill.core.views import get_view\n"
        "assert 'nbdistill.families' not in sys.modules\n"
        "print(get_view('agreement_matrix').__module__)\n"
    )
    assert out == "nbdistill.families.kd.views"


def test_core_s_registry_and_style_import_neither_torch_nor_matplotlib_nor_the_widgets():
    out = _fresh(
        "import sys\n"
        "import nbdistill.core.views, nbdistill.core.style\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'nbdistill.widgets', 'nbdistill.families') if m in sys.modules))\n"
    )
    assert out == "[]"


def test_the_default_drawer_is_the_widgets_draw_run_loaded_through_the_entry_point():
    out = _fresh(
        "import sys\n"
        "from nbdistill.core.views import drawer\n"
        "assert 'nbdistill.widgets.views' not in sys.modules\n"
        "d = drawer()\n"
        "print(d.__module__, d.__name__)\n"
    )
    assert out == "nbdistill.widgets.views draw_run"


def test_run_plot_takes_a_drawer_and_shows_what_it_draws(tmp_path):
    calls = []

    def drawer(log, method, views=None, title=None):
        calls.append((len(log), method, views, title))
        fig = Figure()
        empty(fig.subplots(), "custom")
        return fig

    fig = _run(tmp_path).plot(views=["losses"], drawer=drawer)
    assert isinstance(fig, ShownFigure) and fig.axes[0].get_title() == "custom"
    ((n, method, views, title),) = calls
    assert n > 0 and method == "kd.hinton" and views == ["losses"] and title.startswith("kd.hinton — r1")


def test_run_plot_uses_the_registered_drawer(tmp_path, scratch):
    from nbdistill.widgets.views import draw_run

    titles = []

    @registry.register_drawer
    def spy(log, method, views=None, title=None):
        titles.append(title)
        return draw_run(log, method, views=views, title=title)

    fig = _run(tmp_path).plot()
    assert isinstance(fig, ShownFigure) and titles == ["kd.hinton — r1 (finished)"]
    assert fig.axes[0].get_title() == "training loss"
