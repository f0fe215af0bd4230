"""The instructor's kit graded the way an instructor grades it: nbgrader's own commands, nothing injected.

The source version (solutions between nbgrader's markers) and the student release are written by
``fvae_lib.release``; nbgrader's real ``generate_assignment`` registers each assignment, then ``autograde``
executes submissions top to bottom in a fresh kernel, as it would a student's: the source version of every
notebook, which must get full marks, and the release unchanged of the two notebooks whose graded parts are whole
training steps (01's beta-VAE step, 05's Algorithm 2), which must get zero on every code exercise. That an
unfinished exercise of any notebook fails its autograded test is checked without executing the notebooks, for
every exercise (tests/test_release.py) and for every checker (tests/test_exercises.py); grading each release
unchanged here as well would execute every notebook once more. Smoke mode (``--mode smoke`` and
``FVAE_MODE=smoke``) keeps it to minutes on a CPU.

Needs the ``course`` extra (nbgrader); skipped, saying so, without it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fvae_lib.release import write_assignments

pytest.importorskip("nbgrader", reason="the nbgrader test needs the course extra: pip install -e '.[course]'")
pytestmark = pytest.mark.slow

CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "fvae"
c.Execute.timeout = 300
"""
# the assignments whose release is also graded unchanged (see the docstring)
UNCHANGED = ("01_vae_and_beta_vae", "05_factorvae")


def nbgrader(course: Path, *args: str, env: dict) -> None:
    # nbgrader runs its database migrations with the `alembic` command: the venv's bin folder goes on PATH
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{(student, assignment): (score, max score, [(grade id, score, max score)])} from nbgrader's gradebook."""
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    write_assignments(course, points=2, mode="smoke")
    assignments = sorted(p.name for p in (course / "source").iterdir())
    # the session's runs folder (conftest.py: a fresh temporary one): the smoke runs the graded notebooks train
    # are the ones the notebooks' own tests then find trained, as a learner's later notebooks do
    env = dict(os.environ, FVAE_MODE="smoke", FVAE_RUNS_DIR=os.environ.get("FVAE_RUNS_DIR") or str(tmp_path_factory.mktemp("runs")),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    env.pop("MPLBACKEND", None)
    for name in assignments:
        nbgrader(course, "generate_assignment", name, "--force", env=env)
        for student, kind in (("solutions", "source"), ("unchanged", "release"))[: 2 if name in UNCHANGED else 1]:
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            shutil.copy(course / kind / name / f"{name}.ipynb", folder / f"{name}.ipynb")
        nbgrader(course, "autograde", name, "--force", env=env)

    from nbgrader.api import Gradebook

    grades = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name in assignments:
            for student in ("solutions", "unchanged") if name in UNCHANGED else ("solutions",):
                submission = gradebook.find_submission(name, student)
                parts = [(g.name, g.score, g.max_score) for nb in submission.notebooks for g in nb.grades]
                grades[student, name] = (submission.score, submission.max_score, parts)
    return assignments, grades


def test_nbgrader_gives_the_source_version_full_marks(graded):
    assignments, grades = graded
    assert len(assignments) >= 8
    for name in assignments:
        score, max_score, parts = grades["solutions", name]
        assert parts and max_score == 2 * len(parts), (name, parts)
        lost = [p for p in parts if p[1] != p[2]]
        assert not lost and score == max_score, f"{name}: the solutions lose points in {lost}"


def test_nbgrader_gives_the_unchanged_release_zero(graded):
    assignments, grades = graded
    assert set(UNCHANGED) <= set(assignments)
    for name in UNCHANGED:
        score, max_score, parts = grades["unchanged", name]
        assert max_score > 0 and score == 0, f"{name}: an unfinished release scores {score} of {max_score}: {parts}"
