"""Test-session settings shared by the library tests (tests/) and the notebooks (notebooks/, via nbval).

Notebooks run in smoke mode, and their runs go to a fresh temporary folder so a test never reuses (or
clobbers) a learner's runs in runs/. The notebook kernels inherit this environment.

No matplotlib backend is forced on the kernels: each starts the way JupyterLab, VS Code and Colab start
one (ipykernel's inline backend, imported only if a cell imports pyplot), so a notebook cell is checked
for what a learner would see. After every cell, :func:`figure_display_problems` fails the cell if a figure
was displayed as text (``<Figure size ... with N Axes>``) or a cell that builds a figure showed no picture. A cell
tagged ``after-exercise`` draws its figure only once the learner's exercise passes (the notebooks in git hold the
exercises undone), so it may show none.
"""
import functools
import inspect
import os
import re
import tempfile

import pytest

os.environ["FVAE_MODE"] = "smoke"
os.environ.setdefault("FVAE_RUNS_DIR", tempfile.mkdtemp(prefix="fvae-test-runs-"))
os.environ.pop("MPLBACKEND", None)  # the kernels choose their backend as a learner's kernel does

FIGURE_AS_TEXT = re.compile(r"^<Figure size [\d.]+x[\d.]+ with \d+ Axes>$")
PICTURE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")
WIDGET_TYPE = "application/vnd.jupyter.widget-view+json"


@functools.cache
def figure_builders() -> tuple[str, ...]:
    """Names whose call in a cell builds a figure: the library's figure functions, matplotlib's constructors."""
    from fvae_lib import plots

    library = [name for name, fn in inspect.getmembers(plots, inspect.isfunction)
               if not name.startswith("_") and fn.__module__ == plots.__name__
               and fn.__annotations__.get("return") == "Figure"]
    return tuple(library + ["Figure", "plt.subplots", "plt.figure", "latent_explorer", "interact"])


def figure_display_problems(source: str, outputs: list, builders: tuple[str, ...], picture_optional: bool = False) -> list[str]:
    """What a learner would see wrong in one executed cell's outputs (nbformat output dicts)."""
    problems = []
    pictures = widgets = 0
    for out in outputs:
        data = out.get("data", {})
        pictures += any(m in data for m in PICTURE_TYPES)
        widgets += WIDGET_TYPE in data
        text = data.get("text/plain", "")
        if isinstance(text, list):
            text = "".join(text)
        if FIGURE_AS_TEXT.match(text.strip()) and not any(m in data for m in PICTURE_TYPES):
            problems.append(f"a figure was displayed as the text {text.strip()!r}, not as a picture")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    called = [b for b in builders if re.search(rf"(?<!\w){re.escape(b)}\(", code)]
    if called and not (pictures or widgets) and not picture_optional:
        problems.append(f"the cell builds a figure ({', '.join(called)}) but shows no picture")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    outputs = getattr(item, "test_outputs", None)
    if outputs is not None and hasattr(item, "cell"):  # an nbval notebook cell that ran
        from nbval.plugin import NbCellError

        tags = item.cell.get("metadata", {}).get("tags", [])
        problems = figure_display_problems(item.cell.source, outputs, figure_builders(), "after-exercise" in tags)
        if problems:
            raise NbCellError(item.cell_num, "; ".join(problems), item.cell.source)
    return result
