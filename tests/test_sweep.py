"""The sweep spec: run names, a spec from TOML and its tasks, and every bad spec refused with what to fix."""
import textwrap

import pytest

from fvae_lib.config import ConfigError
from fvae_lib.sweep import SweepSpec, run_name

def test_run_names_are_the_notebooks_names():
    assert run_name("betavae", 4.0, 0) == "betavae_b4"
    assert run_name("factorvae", 35, 0) == "factorvae_g35"
    assert run_name("betavae", 0.5, 2) == "betavae_b0.5_s2"


def test_spec_from_toml_and_its_tasks(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent("""
        preset = "smoke"
        seeds = [0, 1]
        iterations = 30
        [grid]
        betavae = [1, 4]
        factorvae = [35]
        [publish]
        folder = "pub"
    """))
    spec = SweepSpec.from_file(path)
    tasks = spec.tasks(tmp_path / "out", threads=1)
    assert [t["name"] for t in tasks] == ["factorvae_g35", "factorvae_g35_s1", "betavae_b1", "betavae_b4", "betavae_b1_s1", "betavae_b4_s1"]
    assert all(t["config"]["iterations"] == 30 and t["config"]["preset"] == "smoke" for t in tasks)
    assert tasks[0]["config"]["gamma"] == 35 and tasks[2]["config"]["beta"] == 1 and tasks[1]["config"]["seed"] == 1
    assert spec.publish["folder"] == str(tmp_path / "pub")  # relative to the spec file, not the working directory


@pytest.mark.parametrize("values,message", [
    ({"grid": {"vae": [1]}}, "unknown model 'vae'"),
    ({"grid": {"betavae": []}}, "non-empty list"),
    ({"grid": {"betavae": [-1]}}, "numbers >= 0"),
    ({"grid": {"betavae": [1]}, "sedes": [0]}, "unknown keys ['sedes']"),
    ({"grid": {"betavae": [1]}, "preset": "huge"}, "unknown preset"),
    ({"grid": {"betavae": [1]}, "metrics": ["fvae"]}, "unknown metrics"),
    ({"seeds": [0]}, "no grid"),
    ({"grid": {"betavae": [1, 1.0]}}, "gives the same beta twice"),
    ({"grid": {"betavae": [0, -0.0]}}, "gives the same beta twice"),
    ({"grid": {"betavae": [1]}, "decomposition_samples": -5}, "decomposition_samples must be a whole number >= 2"),
    ({"grid": {"betavae": [1]}, "decomposition_samples": 1}, "decomposition_samples must be a whole number >= 2"),
    ({"grid": {"betavae": [1]}, "trajectory_every": "x"}, "trajectory_every must be a whole number"),
    ({"grid": {"betavae": [1]}, "trajectory_every": -2}, "trajectory_every must be a whole number"),
    ({"grid": {"betavae": [1]}, "seeds": [True]}, "seeds must be a non-empty list of integers"),
    ({"grid": {"betavae": [1]}, "seeds": 3}, "seeds must be a non-empty list of integers"),
    ({"grid": {"betavae": [1]}, "seeds": [0, 0]}, "seeds lists a seed twice"),
    ({"grid": {"betavae": [1]}, "iterations": "5000"}, "iterations must be a whole number >= 1"),
    ({"grid": {"betavae": [1]}, "iterations": 0}, "iterations must be a whole number >= 1"),
    ({"grid": {"betavae": [True]}}, "numbers >= 0"),
    ({"grid": {"betavae": [1]}, "threads": 1.5}, "threads must be a whole number"),
    ({"grid": {"betavae": [1]}, "mem_gb": -1}, "mem_gb must be a number > 0"),
    ({"grid": {"betavae": [1]}, "precision": "fp8"}, "precision must be"),
    ({"grid": {"betavae": [1]}, "metrics": "mig"}, "metrics must be a list"),
    ({"grid": {"betavae": [1]}, "slurm": "gpu"}, "slurm must be a table"),
    ({"grid": {"betavae": [1]}, "trajectory_decomposition": ["betavae_b4"]}, "not in the grid: ['betavae_b4']"),
    ({"grid": {"betavae": [1]}, "trajectory_decomposition": "yes"}, "true, false or a list of run names"),
])
def test_bad_specs_are_refused_with_what_to_fix(values, message):
    with pytest.raises(ConfigError, match=None) as err:
        SweepSpec.from_dict(values)
    assert message in str(err.value)


def test_missing_or_broken_spec_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        SweepSpec.from_file(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("grid = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SweepSpec.from_file(tmp_path / "bad.toml")
