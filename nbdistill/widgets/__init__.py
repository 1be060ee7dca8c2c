"""Live panels and the views they (and ``Run.plot``) draw.

- :mod:`.views`: pure functions drawing run events on matplotlib Axes (``draw_run``, ``compare``).
- :class:`.panel.Panel` (``nd.panel(family, ...)``): controls, Start/Stop, progress, live figure;
  beside it :mod:`.controls` (the hyper-parameter controls, from the method's declaration),
  :mod:`.run_state` (one run's state, fresh every Start) and :mod:`.layout` (its widgets).
- :mod:`.render`: drawing to PNG, and the worker process the panel uses to keep matplotlib off the
  kernel's GIL (:mod:`.render.protocol`: the frames between the two).

``Panel`` is imported lazily, so ``Run.plot`` and the drawing worker never import ipywidgets.
"""

from . import views

__all__ = ["Panel", "views"]


def __getattr__(name: str):
    if name == "Panel":
        from .panel import Panel

        return Panel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
