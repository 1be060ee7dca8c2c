"""A matplotlib Figure that shows itself in Jupyter, with or without ``%matplotlib inline``.

The views draw on Figures made without pyplot (so nothing pops up or leaks between cells); IPython
only knows how to show a bare Figure once the inline backend has registered its formatter, so
``run.plot()`` in a fresh notebook showed ``<Figure size 1260x680 with 6 Axes>``. A
:class:`ShownFigure` is still a ``Figure`` in every way, plus ``_repr_png_``.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

#: Resolution of the PNG a notebook shows.
DISPLAY_DPI = 90


class ShownFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that Jupyter displays as a PNG."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DISPLAY_DPI, bbox_inches="tight")
        return buf.getvalue()


def shown(fig: Figure) -> Figure:
    """``fig`` itself (same object, same drawing), made a :class:`ShownFigure` when it is a plain Figure."""
    if type(fig) is Figure:
        fig.__class__ = ShownFigure
    return fig
