"""The notebooks are clean in git and built to the series' conventions (nbval executes them)."""
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))


def test_the_series_is_complete_and_numbered():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(8)), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_notebook_is_clean_and_follows_the_conventions(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert nb.metadata.get("accelerator") == "GPU", "Colab should open a GPU runtime"
    assert set(nb.metadata) <= {"kernelspec", "language_info", "accelerator", "colab"}, "stray metadata"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs are not kept in git"
        assert set(cell.metadata) <= {"tags"}, f"stray cell metadata {dict(cell.metadata)}"
    sources = [c.source for c in nb.cells]
    assert "colab.research.google.com" in sources[0], "a Colab badge in the first cell"
    assert any('"google.colab" in sys.modules' in s and "%pip install" in s for s in sources), "the Colab setup cell"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "MODE" in params[0].source, "one papermill parameters cell with MODE"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_checkers_and_solutions(path):
    text = path.read_text()
    if "## Exercises" not in text:
        return
    solution = REPO / "notebooks" / "solutions" / path.name.replace(".ipynb", "_solutions.ipynb")
    assert solution.exists()
    stubs = re.findall(r"check_\w+", text)
    assert stubs and set(stubs) <= set(re.findall(r"check_\w+", solution.read_text()))
    assert "raise NotImplementedError" in text and "raise NotImplementedError" not in solution.read_text()


def test_readme_lists_every_notebook():
    readme = (REPO / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, path.name
