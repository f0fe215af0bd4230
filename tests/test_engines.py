"""Where a sweep's runs execute: the plan of workers, real smoke sweeps through both engines, and what happens
when something dies: a killed worker, a killed driver, a pre-empted job.

Every wait here is on a condition (a lock file naming a live process, a logged step, a finished job), never a
guessed time, so the tests hold on a loaded machine.
"""
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from fvae_lib.config import ConfigError
from fvae_lib.engine_submitit import JOBS_FILE
from fvae_lib.engines import plan_workers, run_sweep
from fvae_lib.reference import read_trajectories
from fvae_lib.storage import process_alive
from fvae_lib.sweep import SweepSpec
from fvae_lib.sweep_task import task_state
from sweep_helpers import ITERATIONS, SPEC, assert_clean_history, training_pid, wait_for

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

def test_a_killed_worker_fails_alone_and_its_run_finishes_on_rerun(tmp_path):
    spec = SweepSpec.from_dict(dict(SPEC, grid={"betavae": [1, 4]}))
    out = tmp_path / "sweep"
    rows = {}
    driver = threading.Thread(daemon=True, target=lambda: rows.update(
        {r["name"]: r for r in run_sweep(spec, out, workers=2, threads=1, progress=False, poll_s=0.2)}))
    driver.start()
    # the two workers start together; the other run may be anywhere, even finished, when the victim dies
    victim = wait_for(lambda: training_pid(out / "betavae_b4"), "betavae_b4 to train")
    os.kill(victim, signal.SIGKILL)  # as an OOM kill would
    driver.join()
    assert rows["betavae_b1"]["status"] == "finished"
    assert rows["betavae_b4"]["status"] == "failed" and "killed by signal 9" in rows["betavae_b4"]["error"]
    rows = {r["name"]: r for r in run_sweep(spec, out, workers=2, threads=1, progress=False, poll_s=0.2)}
    assert all(r["status"] == "finished" for r in rows.values()), rows
    for name in rows:
        assert_clean_history(out / name, ITERATIONS)


DRIVER = """
import sys
from fvae_lib.engines import run_sweep
from fvae_lib.sweep import SweepSpec

spec = SweepSpec.from_dict(dict(preset="smoke", iterations=int(sys.argv[4]), settings="smoke", trajectory_every=-1, metrics=["factor_vae"], grid={"betavae": [4]}))
run_sweep(spec, sys.argv[1], engine=sys.argv[2], cluster=sys.argv[3] or None, workers=1, threads=1,
          progress=False, poll_s=0.2)
"""


@pytest.mark.parametrize("engine", ["local", "submitit"])
def test_a_rerun_after_a_killed_driver_follows_the_run_still_going_instead_of_starting_it_twice(tmp_path, engine):
    if engine == "submitit":
        pytest.importorskip("submitit")
    out = tmp_path / "sweep"
    run = out / "betavae_b4"
    args = [str(out), engine, "local" if engine == "submitit" else "", str(ITERATIONS)]
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, *args], cwd=REPO)
    orphan = wait_for(lambda: training_pid(run), "the run to train")
    driver.send_signal(signal.SIGKILL)  # the driver dies; its worker (or job) goes on
    driver.wait()
    assert process_alive(orphan)
    spec = SweepSpec.from_dict(dict(SPEC, grid={"betavae": [4]}))
    rows = run_sweep(spec, out, engine=engine, cluster="local" if engine == "submitit" else None, workers=1, threads=1,
                     progress=False, poll_s=0.2)
    assert [r["status"] for r in rows] == ["finished"], rows
    log = (run / "sweep.log").read_text()
    assert log.count("sweep task betavae_b4") == 1, log  # one process trained it, start to end
    assert_clean_history(run, ITERATIONS)
    if engine == "submitit":
        jobs = json.loads((out / ".submitit" / JOBS_FILE).read_text())
        assert list(jobs) == ["betavae_b4"] and len([p for p in (out / ".submitit").iterdir() if p.name.isdigit()]) == 1


def test_plan_workers():
    assert plan_workers(12, "cpu", cores=2) == (2, 1)  # one one-thread run per core (measured faster on 2 cores)
    assert plan_workers(1, "cpu", cores=2) == (1, 2)  # a lone run gets every core
    assert plan_workers(12, "cpu", threads=2, cores=2) == (1, 2)
    assert plan_workers(12, "cpu", workers=3, cores=8) == (3, 2)
    with pytest.raises(ConfigError):
        plan_workers(3, "cpu", workers=-1)


@pytest.mark.slow
def test_smoke_sweep_trains_scores_resumes_and_reports_a_failure(tmp_path):
    out = tmp_path / "sweep"
    # a folder that already holds a different run under one of the names: that run must fail, the other go on
    blocker = out / "factorvae_g35"
    blocker.mkdir(parents=True)
    (blocker / "config.json").write_text(json.dumps({"model": "betavae", "preset": "smoke"}))
    # one metric: what is under test is the sweep (every metric is scored the same way; tests/test_evaluate.py)
    spec = SweepSpec.from_dict({"grid": {"betavae": [4], "factorvae": [35]}, "preset": "smoke", "settings": "smoke",
                                "metrics": ["factor_vae"]})
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


def test_a_gpu_sweep_can_be_specified_on_a_machine_without_a_gpu():
    """A SLURM login node has no GPU: the spec, its tasks and sweep.json's record must not need one."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from fvae_lib.engines import resolved_environment

    spec = SweepSpec.from_dict({"grid": {"factorvae": [35]}, "preset": "gpu", "device": "cuda"})
    assert spec.tasks(threads=4)[0]["config"]["device"] == "cuda"
    assert resolved_environment(spec.tasks(threads=4)[0]["config"], 4)["device"] == "cuda (on the jobs' nodes)"
