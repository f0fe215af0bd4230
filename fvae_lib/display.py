"""Figures as objects and as pictures: a pyplot-free Figure, its PNG bytes, and showing it in any IPython kernel."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported lazily; the annotations say which functions return a figure
    from matplotlib.figure import Figure


def new_figure(*args, **kwargs) -> Figure:
    # Figure() rather than pyplot.figure(): no global state, works headless, nothing to close.
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# Showing figures in notebooks, whatever the matplotlib backend
# --------------------------------------------------------------------------------------------------

_FIGURE_MIME_TYPES = ("image/png", "image/svg+xml", "image/jpeg", "application/pdf")


def figure_png(fig, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes, cropped to its content (what a notebook shows and a widget displays)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def show_figures_in_notebooks() -> bool:
    """Make a bare ``Figure`` display as a picture in the running IPython kernel; True if it now does.

    The library's figures are ``matplotlib.figure.Figure`` objects built without pyplot (no global state).
    IPython shows such an object as a picture only once something has registered a display formatter for
    it, which matplotlib's inline backend does when pyplot is first imported; before that, or under
    another backend (``MPLBACKEND=Agg``), a cell ending in a figure prints ``<Figure size ... with N
    Axes>``. This registers a PNG formatter for ``Figure`` in the kernel, unless one is registered already
    (an inline backend's own choice, SVG or retina, is kept; pyplot's later import replaces ours cleanly).
    Called when :mod:`fvae_lib` is imported; does nothing outside IPython. Works the same in JupyterLab,
    the classic Notebook, VS Code and Colab, which all run IPython kernels.
    """
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return False
    if any(formatters[m].for_type_by_name("matplotlib.figure", "Figure") is not None
           for m in _FIGURE_MIME_TYPES if m in formatters):
        return True
    formatters["image/png"].for_type_by_name("matplotlib.figure", "Figure", figure_png)
    return True
