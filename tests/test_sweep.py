"""Sweeps: the spec, the plan of workers, the table, and real smoke sweeps through both engines."""
import json
import textwrap

import pytest
import torch

from fvae_lib.config import ConfigError
from fvae_lib.engines import plan_workers, run_sweep
from fvae_lib.reference import load_reference_model, read_results, read_trajectories, reference_dir
from fvae_lib.runs import load_model
from fvae_lib.sweep import SweepSpec, run_name, task_state
from fvae_lib.sweep_table import final_terms


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


def test_a_run_config_from_a_file_is_validated():
    from fvae_lib.config import TrainConfig

    good = TrainConfig.from_preset("smoke").to_dict()
    assert TrainConfig.from_dict(good) == TrainConfig.from_preset("smoke")
    for bad, message in [(dict(iterations="5000"), "iterations must be int"), (dict(seed=True), "seed must be int"),
                         (dict(gamma=-1.0), "gamma must be a finite number >= 0"), (dict(betas_d=[0.5]), "betas_d must be")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict(dict(good, **bad))


def test_missing_or_broken_spec_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        SweepSpec.from_file(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("grid = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SweepSpec.from_file(tmp_path / "bad.toml")


def test_plan_workers():
    assert plan_workers(12, "cpu", cores=2) == (2, 1)  # one one-thread run per core (measured faster on 2 cores)
    assert plan_workers(1, "cpu", cores=2) == (1, 2)  # a lone run gets every core
    assert plan_workers(12, "cpu", threads=2, cores=2) == (1, 2)
    assert plan_workers(12, "cpu", workers=3, cores=8) == (3, 2)
    with pytest.raises(ConfigError):
        plan_workers(3, "cpu", workers=-1)


def test_final_terms_average_the_last_tenth():
    history = [{"step": i, "recon": float(i), "elapsed_s": 1.0} for i in range(1, 21)]
    assert final_terms(history) == {"recon": 19.5}  # the last 2 of 20 windows


@pytest.mark.slow
def test_smoke_sweep_trains_scores_resumes_and_reports_a_failure(tmp_path):
    out = tmp_path / "sweep"
    # a folder that already holds a different run under one of the names: that run must fail, the other go on
    blocker = out / "factorvae_g35"
    blocker.mkdir(parents=True)
    (blocker / "config.json").write_text(json.dumps({"model": "betavae", "preset": "smoke"}))
    spec = SweepSpec.from_dict({"grid": {"betavae": [4], "factorvae": [35]}, "preset": "smoke", "settings": "quick"})
    rows = {r["name"]: r for r in run_sweep(spec, out, workers=2, threads=1, progress=False, poll_s=0.2)}
    assert rows["factorvae_g35"]["status"] == "failed" and rows["factorvae_g35"]["error"]
    good = rows["betavae_b4"]
    assert good["status"] == "finished" and good["steps"] == 40 and good["beta"] == 4.0
    assert 0 <= good["factor_vae.eval_accuracy"] <= 1 and good["decomposition.avg_kl"] > 0 and good["final_recon"] > 0
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 3 and table[0].startswith("name,model,hyperparameter,value")
    assert [json.loads(line)["name"] for line in (out / "results.jsonl").read_text().splitlines()] == ["factorvae_g35", "betavae_b4"]
    traj = read_trajectories(out)
    assert [(p["name"], p["step"]) for p in traj] == [("betavae_b4", 20), ("betavae_b4", 40)]

    # resumable: the finished run is not touched again; mending the blocked folder lets the failed one finish
    done = out / "betavae_b4" / "checkpoint.pt"
    before = done.stat().st_mtime_ns
    (blocker / "config.json").unlink()
    rows = {r["name"]: r for r in run_sweep(spec, out, workers=2, threads=1, progress=False, poll_s=0.2)}
    assert done.stat().st_mtime_ns == before
    assert rows["factorvae_g35"]["status"] == "finished" and "final_tc" in rows["factorvae_g35"]
    assert all(task_state(t) == "done" for t in spec.tasks(out))

    # asking for the decomposition along training later traces only that run again, and trains nothing
    spec = SweepSpec.from_dict(dict(spec.to_dict(), trajectory_decomposition=["betavae_b4"]))
    assert [task_state(t) for t in spec.tasks(out)] == ["done", "partial"]
    run_sweep(spec, out, workers=1, threads=1, progress=False, poll_s=0.2)
    assert done.stat().st_mtime_ns == before
    traj = read_trajectories(out)
    decomposed = [p for p in traj if p["name"] == "betavae_b4"]
    assert [p["step"] for p in decomposed] == [20, 40] and all(p["total_correlation"] is not None for p in decomposed)
    assert all(p["total_correlation"] is None for p in traj if p["name"] == "factorvae_g35")
    # the last snapshot is the final model: its decomposition agrees with the evaluation's within Monte Carlo error
    final = json.loads((out / "betavae_b4" / "metrics.json").read_text())["decomposition"]
    for term in ("mutual_info", "total_correlation"):
        assert abs(decomposed[-1][term] - final[term]) < 5 * (final["tc_error"] + decomposed[-1]["tc_error"]) + 0.05, term
    assert decomposed[-1]["avg_kl"] == pytest.approx(final["avg_kl"], rel=1e-3)  # closed form: no Monte Carlo


@pytest.mark.slow
def test_smoke_sweep_through_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    spec = SweepSpec.from_dict({"grid": {"betavae": [1, 4]}, "preset": "smoke", "settings": "quick", "trajectory_every": -1})
    rows = run_sweep(spec, tmp_path, engine="submitit", cluster="local", workers=2, threads=1, progress=False, poll_s=0.2)
    assert [r["status"] for r in rows] == ["finished", "finished"], rows
    assert len([p for p in (tmp_path / ".submitit").iterdir() if p.name.isdigit()]) == 2  # two real jobs ran
    with pytest.raises(ConfigError, match="SLURM"):
        run_sweep(spec, tmp_path, engine="submitit", cluster="local", slurm={"partition": "x"}, progress=False)


@pytest.mark.slow
def test_publish_writes_small_files_and_fp16_models_that_load(tmp_path):
    out = tmp_path / "sweep"
    spec = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke", "settings": "quick",
                                "publish": {"folder": str(tmp_path / "pub"), "models": ["betavae_b4"]}})
    run_sweep(spec, out, workers=1, threads=1, progress=False, poll_s=0.2)
    pub = tmp_path / "pub"
    assert sorted(p.name for p in (pub / "runs" / "betavae_b4").iterdir()) == ["config.json", "history.jsonl", "metrics.json", "trajectory.json"]
    assert read_results(pub)[0]["name"] == "betavae_b4"
    small, config = load_reference_model("betavae_b4", folder=pub)
    full, _ = load_model(out / "betavae_b4")
    assert config.beta == 4.0
    for (name, a), b in zip(full.state_dict().items(), small.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name  # fp16 rounding only
    with pytest.raises(ConfigError, match="shipped ones are"):
        load_reference_model("betavae_b99", folder=pub)


def test_reference_dir_says_where_the_results_are(tmp_path, monkeypatch):
    monkeypatch.setenv("FVAE_REFERENCE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="reference/ folder"):
        reference_dir()


def test_the_shipped_reference_sweep_is_complete_and_labelled_with_its_scale():
    rows = read_results()
    assert len(rows) == 12 and all(r["status"] == "finished" and r["iterations"] == 5000 for r in rows)
    spec = SweepSpec.from_file(reference_dir() / "sweep.toml")
    assert {r["name"] for r in rows} == {t["name"] for t in spec.tasks()}
    for r in rows:  # every run's small files are in git, not only the table
        assert sorted(p.name for p in (reference_dir() / "runs" / r["name"]).iterdir()) == \
            ["config.json", "history.jsonl", "metrics.json", "trajectory.json"], r["name"]
    trajectories = read_trajectories()
    assert {p["name"] for p in trajectories} == {r["name"] for r in rows}
    # the runs the spec decomposes along training (notebook 05 plots them) have every term at every snapshot,
    # and the last snapshot, the final model, agrees with the table's decomposition within Monte Carlo error
    decomposed = {t["name"] for t in spec.tasks() if t["trajectory_decomposition"]}
    assert decomposed == {"betavae_b1", "betavae_b4", "factorvae_g10", "factorvae_g35"}
    table = {r["name"]: r for r in rows}
    for name in decomposed:
        points = sorted((p for p in trajectories if p["name"] == name), key=lambda p: p["step"])
        assert [p["step"] for p in points] == [1000, 2000, 3000, 4000, 5000]
        assert all(p[k] is not None for p in points for k in ("mutual_info", "total_correlation", "dimwise_kl", "tc_error"))
        last, final = points[-1], table[name]
        error = 2 * (last["tc_error"] ** 2 + final["decomposition.tc_error"] ** 2) ** 0.5
        assert abs(last["total_correlation"] - final["decomposition.total_correlation"]) < 2 * error + 0.05, name
    assert all(p["total_correlation"] is None for p in trajectories if p["name"] not in decomposed)
    for name in spec.publish["models"]:
        vae, config = load_reference_model(name)
        assert config.iterations == 5000 and not any(torch.isnan(p).any() for p in vae.parameters())


def test_a_run_that_ends_in_a_blow_up_is_flagged():
    from fvae_lib.sweep_table import final_spike

    steady = [{"step": 50 * i, "recon": 120.0 - i * 0.1, "kl": 18.0} for i in range(1, 101)]
    assert final_spike(steady) == {"final_spike": pytest.approx(1.0, abs=0.02), "unstable": False}
    spiked = steady[:-3] + [{"step": 50 * i, "recon": 210.0, "kl": 160.0} for i in range(98, 101)]
    flag = final_spike(spiked)
    assert flag["unstable"] and flag["final_spike"] > 2.5
    assert final_spike(steady[:1]) == {}  # too short to tell


def test_the_shipped_table_flags_the_one_unstable_reference_run():
    from fvae_lib.reference import read_history
    from fvae_lib.sweep_table import final_spike

    rows = read_results()
    assert [r["name"] for r in rows if r["unstable"]] == ["factorvae_g35_s1"]
    for row in rows:  # the column is what the shipped history gives
        assert final_spike(read_history(row["name"]))["final_spike"] == pytest.approx(row["final_spike"])


def test_the_reference_spec_pins_what_auto_would_leave_to_the_machine():
    spec = SweepSpec.from_file(reference_dir() / "sweep.toml")
    assert (spec.data_source, spec.device, spec.precision, spec.threads) == ("replica", "cpu", "bf16", 1)
    assert all(t["config"]["threads"] == 1 and t["config"]["precision"] == "bf16" for t in spec.tasks(threads=1))


def test_publish_refuses_an_incomplete_sweep_and_keeps_published_results(tmp_path):
    from fvae_lib.reference import AlreadyPublished, publish

    spec = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke", "publish": {"folder": str(tmp_path / "pub")}})
    with pytest.raises(ConfigError, match="not finished: betavae_b4"):
        publish(tmp_path / "sweep", spec, [{"name": "betavae_b4", "status": "failed"}])
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "results.csv").write_text("shipped\n")
    with pytest.raises(AlreadyPublished, match="--overwrite-published"):
        publish(tmp_path / "sweep", spec, [{"name": "betavae_b4", "status": "finished"}])
    assert (tmp_path / "pub" / "results.csv").read_text() == "shipped\n"


def test_a_gpu_sweep_can_be_specified_on_a_machine_without_a_gpu():
    """A SLURM login node has no GPU: the spec, its tasks and sweep.json's record must not need one."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from fvae_lib.engines import resolved_environment

    spec = SweepSpec.from_dict({"grid": {"factorvae": [35]}, "preset": "gpu", "device": "cuda"})
    assert spec.tasks(threads=4)[0]["config"]["device"] == "cuda"
    assert resolved_environment(spec, 4)["device"] == "cuda (on the jobs' nodes)"


def test_configs_of_older_run_folders_still_load():
    from fvae_lib.config import TrainConfig

    old = dict(TrainConfig.from_preset("smoke").to_dict(), compile=False)  # before compile took a mode name
    assert TrainConfig.from_dict(old).compile == "off"
    assert TrainConfig.from_dict(dict(old, compile=True)).compile == "default"
