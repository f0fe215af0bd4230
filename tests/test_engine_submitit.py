"""The submitit engine: a sweep as one batch or one SLURM job array, its parameters typed and checked, and a
pre-empted job requeued. Every wait is on a condition, never a guessed time."""
import json
import os
import signal
from pathlib import Path

import pytest

from fvae_lib.config import ConfigError
from fvae_lib.engine_submitit import JOBS_FILE, SubmititEngine
from fvae_lib.engines import run_sweep
from fvae_lib.sweep import SweepSpec

from sweep_helpers import ITERATIONS, SPEC, assert_clean_history, training_pid, wait_for

pytestmark = pytest.mark.slow

def test_a_preempted_submitit_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    pytest.importorskip("submitit")
    spec = SweepSpec.from_dict(dict(SPEC, grid={"betavae": [4]}))
    out = tmp_path / "sweep"
    engine = SubmititEngine(out, threads=1, cluster="local", max_in_flight=1)
    [task] = spec.tasks(out, threads=1)
    [job] = engine.submit_many([task])
    run = Path(task["folder"])
    first = wait_for(lambda: (run / "checkpoint.pt").exists() and training_pid(run), "a checkpoint")
    os.kill(first, signal.SIGUSR2)  # what SLURM sends before a timeout or a pre-emption, through submitit
    result = wait_for(lambda: engine.outcome(job), "the job to end")
    assert result["status"] == "finished", result
    log = (run / "sweep.log").read_text()
    assert log.count("sweep task betavae_b4") == 2 and "stopped (SystemExit)" in log, log  # requeued once, resumed
    assert_clean_history(run, ITERATIONS)

def test_submitit_runs_a_sweep_as_one_batch_and_records_the_job_ids(tmp_path):
    pytest.importorskip("submitit")
    spec = SweepSpec.from_dict(dict(SPEC, iterations=40, grid={"betavae": [1, 4]}, threads=1))
    rows = run_sweep(spec, tmp_path, engine="submitit", cluster="local", workers=2, progress=False, poll_s=0.2)
    assert [r["status"] for r in rows] == ["finished", "finished"], rows
    jobs = json.loads((tmp_path / ".submitit" / JOBS_FILE).read_text())
    assert sorted(jobs) == ["betavae_b1", "betavae_b4"] and all(j["cluster"] == "local" for j in jobs.values())
    assert json.loads((tmp_path / "betavae_b1" / "config.json").read_text())["threads"] == 1
    recorded = json.loads((tmp_path / "sweep.json").read_text())["resolved"]
    assert recorded["device"] == "cpu" and recorded["precision"] in ("fp32", "bf16") and recorded["torch"]
    assert len([p for p in (tmp_path / ".submitit").iterdir() if p.name.isdigit()]) == 2  # two real jobs ran
    with pytest.raises(ConfigError, match="SLURM"):  # SLURM's own options off a SLURM cluster
        run_sweep(spec, tmp_path, engine="submitit", cluster="local", slurm={"partition": "x"}, progress=False)

@pytest.mark.parametrize("slurm, message", [
    ({"gpus_per_node": "x"}, "gpus_per_node takes a int"),
    ({"mem_gb": "lots"}, "mem_gb takes a float"),
    ({"partiton": "gpu"}, "not a parameter submitit knows"),
])
def test_a_bad_slurm_value_is_a_clear_error(tmp_path, slurm, message):
    pytest.importorskip("submitit")
    with pytest.raises(ConfigError, match=message):
        SubmititEngine(tmp_path, threads=1, cluster="local", slurm=slurm)
    from fvae_lib.__main__ import main

    (key, value), = slurm.items()
    assert main(["sweep", "--betavae", "1", "--preset", "smoke", "--out", str(tmp_path), "--engine", "submitit",
                 "--cluster", "local", "--slurm", f"{key}={value}"]) == 2

def test_slurm_numbers_from_the_command_line_are_typed(tmp_path):
    pytest.importorskip("submitit")
    from fvae_lib.engine_submitit import parameter_value

    assert parameter_value("gpus_per_node", "1") == 1 and parameter_value("mem_gb", "7.5") == 7.5
    assert parameter_value("partition", "gpu") == "gpu"

def test_on_slurm_a_sweep_is_one_job_array_sized_from_the_spec_and_a_rerun_reattaches(tmp_path):
    """SLURM through submitit's own mock of sbatch and sacct (submitit.slurm.test_slurm.mocked_slurm)."""
    pytest.importorskip("submitit")
    from submitit.slurm.test_slurm import mocked_slurm

    spec = SweepSpec.from_dict(dict(SPEC, grid={"betavae": [1, 4]}))
    with mocked_slurm() as mock:
        engine = SubmititEngine(tmp_path, threads=2, cluster="slurm", slurm={"partition": "gpu", "gpus_per_node": "1"},
                                max_in_flight=1, mem_gb=8)
        tasks = spec.tasks(tmp_path, threads=2)
        jobs = engine.submit_many(tasks)
        assert [j.job_id for j in jobs] == ["12_0", "12_1"]  # one sbatch, an array of two
        script = (tmp_path / ".submitit" / "12" / "12_submission.sh").read_text()
        for line in ("--array=0-1%1", "--cpus-per-task=2", "--mem=8GB", "--gpus-per-node=1", "--partition=gpu", "--signal=USR2"):
            assert f"#SBATCH {line}" in script, line
        assert json.loads((tmp_path / ".submitit" / JOBS_FILE).read_text())["betavae_b4"]["job_id"] == "12_1"
        # a new driver: a job sacct does not know yet, or still running, is followed; a finished one is not
        again = SubmititEngine(tmp_path, threads=2, cluster="slurm", max_in_flight=1)
        assert again.attach(tasks[0]).job_id == "12_0"
        mock.set_job_state("12_1", "RUNNING")
        assert again.attach(tasks[1]).job_id == "12_1"
        mock.set_job_state("12_0", "COMPLETED")
        mock.set_job_state("12_1", "PREEMPTED")
        assert again.attach(tasks[0]) is None
        assert again.attach(tasks[1]).job_id == "12_1"  # pre-empted: submitit requeues it, so it is followed
