"""The student release and the nbgrader source version generated from the notebooks."""
import ast
import re

import nbformat
import pytest

from fvae_lib.release import STUB, notebooks_dir, solution_body, write_assignments


@pytest.fixture(scope="module")
def assignments(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    write_assignments(out, points=2, mode="smoke")
    return out


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def _grading(cells):
    return [(c.metadata["nbgrader"], c) for c in cells if "nbgrader" in c.metadata]


def test_every_notebook_with_exercises_becomes_an_assignment(assignments):
    with_exercises = sorted(p.stem for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb") if STUB in p.read_text())
    assert len(with_exercises) >= 8
    for kind in ("source", "release"):
        assert sorted(p.name for p in (assignments / kind).iterdir()) == with_exercises


def test_the_release_has_stubs_autograded_tests_with_points_and_no_solutions(assignments):
    for folder in (assignments / "release").iterdir():
        path = folder / f"{folder.name}.ipynb"
        nbformat.validate(nbformat.read(path, as_version=4))
        cells = _cells(path)
        graded = _grading(cells)
        answers = [c for m, c in graded if m["solution"]]
        tests = [(m, c) for m, c in graded if m["grade"]]
        assert answers and len(answers) == len(tests)
        assert all(STUB in c.source for c in answers)
        assert all(m["points"] == 2 and m["locked"] and re.fullmatch(r"# autograded.*\nassert check_\w+\(\w+\)", c.source)
                   for m, c in tests)
        ids = [m["grade_id"] for m, _ in graded]
        assert len(ids) == len(set(ids)) and all(m["schema_version"] == 3 for m, _ in graded)
        # each test cell follows its answer cell
        for k, cell in enumerate(cells):
            if cell.metadata.get("nbgrader", {}).get("grade"):
                assert cells[k - 1].metadata["nbgrader"]["solution"]
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text
        solutions = nbformat.read(notebooks_dir() / "solutions" / f"{folder.name}_solutions.ipynb", as_version=4)
        for answer in answers:
            function = re.search(r"check_\w+\((\w+)\)", answer.source).group(1)
            body = next(solution_body(c.source, function) for c in solutions.cells
                        if c.cell_type == "code" and f"def {function}(" in c.source)
            assert body.strip() not in text  # the solution is not in the student release
        assert re.search(r"^MODE = 'smoke'", next(c.source for c in cells if "parameters" in c.metadata.get("tags", [])), re.M)


def imports_before(cells, cell) -> list:
    """The top-level import statements of the code cells before ``cell``, in order."""
    found = []
    for c in cells[: cells.index(cell)]:
        if c.cell_type != "code":
            continue
        try:
            tree = ast.parse(c.source)
        except SyntaxError:  # an IPython magic
            continue
        found += [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def test_the_source_version_holds_solutions_that_pass_their_autograded_tests(assignments):
    for folder in (assignments / "source").iterdir():
        cells = _cells(folder / f"{folder.name}.ipynb")
        graded = _grading(cells)
        for (meta, answer), (_, test) in zip(graded[::2], graded[1::2]):
            assert meta["solution"] and "### BEGIN SOLUTION" in answer.source and STUB not in answer.source
            # run the imports of the cells before it (as the notebook runs in order; nothing else injected), the
            # imports and the function of the answer cell, then the autograded test: it must pass. The real
            # thing, every cell in order in nbgrader, is tests/test_nbgrader.py (for 01, 05 and 06).
            tree = ast.parse(answer.source)
            kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
            namespace = {}
            exec(compile(ast.Module(body=imports_before(cells, answer), type_ignores=[]), "before", "exec"), namespace)
            exec(compile(ast.Module(body=kept, type_ignores=[]), "answer", "exec"), namespace)
            exec(test.source, namespace)
            # nbgrader's stripping (the region between the markers becomes a stub) leaves an unfinished exercise
            stripped = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "# YOUR CODE HERE\n    raise NotImplementedError()",
                              answer.source, flags=re.S)
            tree = ast.parse(stripped)
            namespace = {}
            exec(compile(ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))],
                                    type_ignores=[]), "stub", "exec"), namespace)
            with pytest.raises(AssertionError):
                exec(test.source, namespace)


def test_the_notebooks_in_git_are_left_untouched(assignments):
    for path in notebooks_dir().glob("[0-9][0-9]_*.ipynb"):
        assert all("nbgrader" not in c.metadata for c in _cells(path))
