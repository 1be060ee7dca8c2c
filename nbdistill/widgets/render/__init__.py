"""Drawing a run's views to PNG, in a worker process off the kernel's GIL.

- :mod:`.drawing`: :class:`Composer` (the views of a run on one PNG, redrawing only what changed)
  and :class:`ReadLog`.
- :mod:`.renderer`: :class:`Renderer`, the panel's side: spawns the worker, sends it the new
  events, falls back to drawing locally when the worker cannot.
- :mod:`.worker`: the worker process's loop.
- :mod:`.protocol`: the frames and message kinds between the two.
"""

from .drawing import PNG_COMPRESSION, REFIT_EVERY, TITLE_HEIGHT, Composer, ReadLog, new_figure
from .renderer import DRAW_TIMEOUT, FIRST_TIMEOUT, Renderer, RenderError, WorkerUnavailable, view_modules
from .worker import serve

__all__ = [
    "DRAW_TIMEOUT",
    "FIRST_TIMEOUT",
    "PNG_COMPRESSION",
    "REFIT_EVERY",
    "TITLE_HEIGHT",
    "Composer",
    "ReadLog",
    "RenderError",
    "Renderer",
    "WorkerUnavailable",
    "new_figure",
    "serve",
    "view_modules",
]
