"""Assignments from the notebooks: a student release, and an nbgrader source version to grade it with.

    python -m fvae_lib release --out assignments [--points 2] [--mode smoke]

writes, in nbgrader's course layout (one assignment per notebook that has exercises):

    assignments/source/<notebook>/<notebook>.ipynb    for the instructor: each exercise's solution between
                                                      ``### BEGIN SOLUTION`` and ``### END SOLUTION``
    assignments/release/<notebook>/<notebook>.ipynb   for students: the exercise cells as stubs, no solutions

An exercise is a code cell of a numbered notebook holding ``raise NotImplementedError  # your code here`` and a
call ``check_<name>(<function>)``; its solution is the function of the same name in the matching
``notebooks/solutions`` notebook. Each exercise cell becomes an nbgrader solution cell, followed by a locked,
autograded test cell ``assert check_<name>(<function>)`` worth ``points``. With nbgrader installed, an
instructor runs ``nbgrader generate_assignment <notebook> --force`` on the source version (which recomputes the
same release, with nbgrader's checksums, and registers the assignment; without ``--force`` nbgrader skips it
because release/ exists) and ``nbgrader autograde`` on submissions. ``mode`` rewrites MODE in both versions, so
students would see it too: to grade fast without that, leave ``mode`` unset and run the grader with
``FVAE_MODE=smoke`` (and ``FVAE_RUNS_DIR`` pointing at a scratch folder). The notebooks in git stay clean:
this only reads them.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from .paths import CHECKOUT
from .storage import atomic_write_bytes

STUB = "raise NotImplementedError  # your code here"
CHECK = re.compile(r"\b(check_\w+)\((\w+)\)")
SCHEMA = 3  # nbgrader's cell metadata schema


def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise ImportError("the release command needs nbformat: pip install -e '.[lab]' (JupyterLab brings it)") from None
    return nbformat


def notebooks_dir() -> Path:
    return CHECKOUT / "notebooks"


def exercises(nb) -> list[tuple[int, str, str]]:
    """(cell index, checker, function) of every exercise cell, in order."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and STUB in cell.source:
            match = CHECK.search(cell.source)
            if not match:
                raise ValueError(f"exercise cell {i} has a stub but no check_<name>(<function>) call")
            found.append((i, match.group(1), match.group(2)))
    return found


def solution_body(source: str, function: str) -> str:
    """The body of ``function`` in a solution cell's source, docstring left out, as written (indented)."""
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            return "\n".join(lines[body[0].lineno - 1: body[-1].end_lineno])
    raise ValueError(f"the solutions define no function {function!r}")


def missing_imports(solution: str, exercise: str) -> list[str]:
    """The solution cell's top-level import lines that the exercise cell does not have.

    The source version copies only the body of the solution's function into the exercise cell; the body may
    use a name the solution cell imported (``math``, ``F``) that the exercise cell does not, and would fail its
    own autograded test with a NameError when the notebook runs in order.
    """
    present = {ast.unparse(n) for n in ast.parse(exercise).body if isinstance(n, (ast.Import, ast.ImportFrom))}
    return [line for n in ast.parse(solution).body if isinstance(n, (ast.Import, ast.ImportFrom))
            for line in [ast.unparse(n)] if line not in present]


def _solutions(nb) -> dict[str, str]:
    """checker name -> the source of the solution cell that calls it."""
    return {m.group(1): cell.source for cell in nb.cells if cell.cell_type == "code"
            for m in [CHECK.search(cell.source)] if m and STUB not in cell.source}


def _meta(cell, grade_id: str, solution: bool, grade: bool, points: float | None = None) -> None:
    meta = dict(grade=grade, grade_id=grade_id, locked=not solution, schema_version=SCHEMA, solution=solution, task=False)
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta


def build(notebook: str | os.PathLike, solutions: str | os.PathLike, points: float = 1.0, mode: str | None = None):
    """(source version, student release) of one notebook, as nbformat notebooks; None, None if it has no exercises."""
    nbf = _nbformat()
    student = nbf.read(notebook, as_version=4)
    found = exercises(student)
    if not found:
        return None, None
    answers = _solutions(nbf.read(solutions, as_version=4))
    stem = Path(notebook).stem
    versions = []
    for with_solutions in (True, False):
        nb = nbf.read(notebook, as_version=4)
        if mode:
            for cell in nb.cells:
                if "parameters" in cell.metadata.get("tags", []):
                    cell.source = re.sub(r"^MODE = .*$", f"MODE = {mode!r}  # set for grading", cell.source, flags=re.M)
        for k, (index, checker, function) in reversed(list(enumerate(found, 1))):
            cell = nb.cells[index]
            if with_solutions:
                if checker not in answers:
                    raise ValueError(f"{stem}: no solution calls {checker}")
                indent = re.search(r"^( *)" + re.escape(STUB), cell.source, flags=re.M).group(1)
                # the solution's own imports go inside the solution region, in the function: the student
                # release is unchanged, and the answer runs without any name from elsewhere
                imports = "".join(f"{indent}{line}\n" for line in missing_imports(answers[checker], cell.source))
                body = imports + solution_body(answers[checker], function)
                cell.source = cell.source.replace(indent + STUB, f"{indent}### BEGIN SOLUTION\n{body}\n{indent}### END SOLUTION")
            _meta(cell, f"{stem}-ex{k}", solution=True, grade=False)
            test = nbf.v4.new_code_cell(f"# autograded: {points:g} point(s)\nassert {checker}({function})")
            test.pop("id", None)
            _meta(test, f"{stem}-ex{k}-test", solution=False, grade=True, points=points)
            nb.cells.insert(index + 1, test)
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"c{i:02d}"
        nbf.validate(nb)
        versions.append(nb)
    return versions[0], versions[1]


def write_assignments(out: str | os.PathLike, points: float = 1.0, mode: str | None = None,
                      notebooks: str | os.PathLike | None = None) -> list[Path]:
    """Write the source and release versions of every numbered notebook with exercises; returns the paths."""
    nbf = _nbformat()
    folder = Path(notebooks) if notebooks else notebooks_dir()
    out = Path(out)
    written = []
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        source, release = build(path, folder / "solutions" / f"{path.stem}_solutions.ipynb", points, mode)
        if source is None:
            continue
        for kind, nb in (("source", source), ("release", release)):
            target = out / kind / path.stem / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, nbf.writes(nb).encode())
            written.append(target)
    return written
