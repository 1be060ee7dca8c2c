"""The view registry: named pure drawing functions ``view(ax: Axes, log: EventLog) -> Axes``.

A view draws a run's events on the matplotlib Axes it is given and returns them; it draws from
an empty or partial log without error and never calls pyplot, so the same view draws in the live
panel, in ``run.plot()``, in the server's PNG and in a test. Views register themselves where they
are written (:mod:`nbdistill.widgets.views` for the views every method shares, each family's
``views.py`` for its own) with :func:`view`::

    @view("losses")
    def losses(ax, log): ...

Core never imports the modules that draw. It reaches them through two entry points, named here
so that the import-graph test can hold core to them:

- :func:`_load_views` imports the families (and the shared views) when a name is not registered
  yet, as :func:`nbdistill.core.registry.get_method` does for methods;
- :func:`drawer` gives :meth:`nbdistill.core.run.Run.plot` the function that lays views out on a
  Figure: the one registered with :func:`register_drawer` (:mod:`nbdistill.widgets.views`
  registers ``draw_run`` when imported), importing that module first if nobody has.

No torch here: the registry, like the method registry's names, is cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .run import EventLog

#: A view: draws ``log`` on ``ax`` and returns ``ax``.
View = Callable[["Axes", "EventLog"], "Axes"]
#: Lays out views on a Figure: ``drawer(log, method, views=None, title=None) -> Figure``.
Drawer = Callable[..., "Figure"]

_VIEWS: dict[str, View] = {}
#: Every registered view by name (read-only; register with :func:`view`).
VIEWS: MappingProxyType[str, View] = MappingProxyType(_VIEWS)
_DRAWER: list[Drawer] = []


def view(name: str) -> Callable[[View], View]:
    """Decorator registering a pure drawing function ``f(ax, log) -> ax`` as view ``name``.

    The function is returned unchanged. Registering a second function under a taken name is a
    ``ValueError``; the same function again (its module imported a second time, as the drawing
    worker does) replaces the first.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a view's name is a non-empty string, got {name!r}")

    def wrap(function: View) -> View:
        old = _VIEWS.get(name)
        if old is not None and _where(old) != _where(function):
            raise ValueError(f"view {name!r} is already registered by {_where(old)}; pick another name for {_where(function)}")
        _VIEWS[name] = function
        return function

    return wrap


def _where(function: Any) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def get_view(name: str) -> View:
    """The view registered as ``name``, loading the families' views first if it is not registered yet."""
    return _VIEWS[check_views([name])[0]]


def check_views(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, once each is a registered view; a :class:`ConfigError` naming the unknown ones."""
    names = tuple(names)
    if any(n not in _VIEWS for n in names):
        _load_views()
    unknown = [n for n in names if n not in _VIEWS]
    if unknown:
        raise ConfigError(
            f"unknown view(s) {unknown}; known: {sorted(_VIEWS)}. A view is registered with "
            "@nbdistill.core.views.view(name) in a module imported before drawing."
        )
    return names


def views_for(method: str) -> tuple[str, ...]:
    """The views ``method`` declares (``("losses",)`` for an unknown method or one declaring none).

    Reads the method registry, which imports the families (and so torch) the first time.
    """
    from .registry import get_method

    try:
        return get_method(method).views or ("losses",)
    except ConfigError:
        return ("losses",)


def register_drawer(function: Drawer) -> Drawer:
    """Make ``function`` the drawer :func:`drawer` returns (see :func:`nbdistill.widgets.views.draw_run`)."""
    _DRAWER[:] = [function]
    return function


def drawer() -> Drawer:
    """The registered drawer; imports :mod:`nbdistill.widgets.views`, which registers one, if none is."""
    if not _DRAWER:
        default_drawer()
    return _DRAWER[0]


def default_drawer() -> Drawer:
    """Entry point: import the package's drawing module, which registers ``draw_run`` as the drawer."""
    import importlib

    module = importlib.import_module("nbdistill.widgets.views")
    return module.draw_run


def _load_views() -> None:
    """Entry point: import the modules that register views (the shared ones and every family's)."""
    import importlib

    importlib.import_module("nbdistill.widgets.views")
    importlib.import_module("nbdistill.families")  # each family imports its views.py
