"""A Figure shown as a picture in any kernel, whatever the backend; nothing registered outside IPython."""
import pytest
from matplotlib.figure import Figure

from fvae_lib import display, plots


@pytest.fixture
def ipython_shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()

def test_figures_display_as_pictures_in_a_kernel_whatever_the_backend(ipython_shell):
    fig = plots.kl_bars([1.0, 0.2])
    data, _ = ipython_shell.display_formatter.format(fig)
    assert "image/png" not in data and data["text/plain"].startswith("<Figure size")  # what learners saw
    assert display.show_figures_in_notebooks()
    data, _ = ipython_shell.display_formatter.format(fig)
    assert data["image/png"][:4] == b"\x89PNG"
    assert display.show_figures_in_notebooks()  # idempotent

def test_an_inline_backends_own_figure_format_is_kept(ipython_shell):
    svg = ipython_shell.display_formatter.formatters["image/svg+xml"]
    svg.for_type(Figure, lambda fig: "<svg/>")
    assert display.show_figures_in_notebooks()
    data, _ = ipython_shell.display_formatter.format(plots.kl_bars([1.0]))
    assert data["image/svg+xml"] == "<svg/>" and "image/png" not in data

def test_outside_ipython_nothing_is_registered():
    import subprocess
    import sys

    code = "import fvae_lib.display as p, sys; assert 'IPython' not in sys.modules; print(p.show_figures_in_notebooks())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
