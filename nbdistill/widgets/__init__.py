"""Live panels and the views they (and ``Run.plot``) draw.

- :mod:`.views`: pure functions drawing run events on matplotlib Axes (``draw_run``, ``compare``).
- :class:`.panel.Panel` (``nd.panel(family, ...)``): controls, Start/Stop, progress, live figure.
- :mod:`.render`: the drawing worker process the panel uses to keep matplotlib off the kernel's GIL.

``Panel`` is imported lazily, so ``Run.plot`` and the drawing worker never import ipywidgets.
"""

from . import views

__all__ = ["Panel", "views"]


def __getattr__(name: str):
    if name == "Panel":
        from .panel import Panel

        return Panel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
