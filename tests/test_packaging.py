"""The install files agree with each other, and the README's commands exist."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib  # novermin (3.11+, with the fallback below)
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (a dev dependency there)
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_mirrors_pyproject():
    project = _pyproject()["project"]
    env = (REPO / "environment.yml").read_text()
    # Python: the conda pin satisfies requires-python
    py = re.search(r"^\s*-\s*python\s*=\s*([\d.]+)", env, re.M)
    assert py, "environment.yml must pin python"
    minimum = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1).split("."))
    assert tuple(int(x) for x in py.group(1).split(".")) >= minimum
    # the repo itself with every extra pyproject declares, through the pip section
    m = re.search(r"^\s*-\s*(?:-e\s+)?\.\[([\w,\s-]+)\]\s*$", env, re.M)
    assert m, "environment.yml must install the repository (.[extras]) in its pip section"
    assert set(x.strip() for x in m.group(1).split(",")) == set(project["optional-dependencies"])
    # and it names no package of its own that pyproject does not know
    deps_section = env.split("dependencies:", 1)[1]
    conda_pkgs = re.findall(r"^\s{2}-\s*([A-Za-z][\w.-]*)", deps_section, re.M)
    assert set(conda_pkgs) <= {"python", "pip"}, conda_pkgs


def test_colab_shipped_packages_have_lower_bounds_only():
    deps = _pyproject()["project"]["dependencies"]
    for name in ("torch", "numpy", "matplotlib", "ipywidgets"):
        spec = next(d for d in deps if re.match(rf"{name}\b", d))
        assert re.fullmatch(rf"{name}>=[\d.]+", spec), f"{spec}: Colab installs must never downgrade {name}"


def test_constraints_pin_the_cpu_torch_and_the_makefile_uses_them():
    assert re.search(r"^torch==2\.13\.0$", (REPO / "constraints.txt").read_text(), re.M)
    makefile = (REPO / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    for target in ("demo:", "test:", "lab:"):
        assert re.search(rf"^{target}", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_python_version_the_readme_claims_is_the_one_the_code_needs():
    """README, pyproject and the code agree: vermin reads every file and reports the newest syntax or module it uses."""
    minimum = re.search(r">=\s*(\d+\.\d+)", _pyproject()["project"]["requires-python"]).group(1)
    assert f"Python ≥ {minimum}" in (REPO / "README.md").read_text()
    pytest.importorskip("vermin")
    proc = subprocess.run([str(Path(sys.executable).with_name("vermin")), "--no-tips", "--violations", "--eval-annotations",
                           f"--target={minimum}-", "fvae_lib", "tests", "benchmarks", "conftest.py"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wheel_would_hold_every_subpackage():
    from setuptools import find_packages

    found = set(find_packages(str(REPO), include=_pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]))
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "fvae_lib").rglob("__init__.py")}
    assert on_disk and on_disk <= found, on_disk - found


def test_colab_installs_the_release_of_this_version():
    """Every notebook's Colab cell pins the release tag of the package version it was written for: bump both
    together, and tag the release (vX.Y.Z) when publishing."""
    import re

    import fvae_lib

    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert fvae_lib.__version__ == version
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        pins = set(re.findall(r"factorvae@v([0-9.]+)|--branch v([0-9.]+)", path.read_text()))
        pins = {p for pair in pins for p in pair if p}
        assert pins == {version}, (path.name, pins)


def test_the_public_surface_resolves_each_name_from_its_home():
    import importlib

    import fvae_lib

    for name, module in fvae_lib._LAZY.items():
        assert getattr(fvae_lib, name) is getattr(importlib.import_module(f"fvae_lib.{module}"), name), name
    assert set(fvae_lib.__all__) <= set(dir(fvae_lib))
    try:
        fvae_lib.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
