"""One run of a sweep: how far it has got (new, partial, done), and a failure that comes back as a result."""
import json
from pathlib import Path

from fvae_lib.config import TrainConfig
from fvae_lib.evaluate import METRIC_SETTINGS
from fvae_lib.runs import CHECKPOINT_FORMAT, RunFolder
from fvae_lib.sweep import SweepSpec
from fvae_lib.sweep_task import run_task, task_state


def one_task(out, **spec):
    # threads=0 (adapt to the load): run_task would otherwise pin this test process's torch threads
    [task] = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke", "settings": "quick", **spec}).tasks(out, threads=0)
    return task


def test_a_run_is_done_once_trained_to_the_end_scored_and_traced(tmp_path):
    task = one_task(tmp_path, trajectory_every=0)
    run, iterations = RunFolder(task["folder"]), task["config"]["iterations"]
    assert task_state(task) == "new"
    run.write_config(TrainConfig.from_dict(task["config"]))
    assert task_state(task) == "partial"  # started: no checkpoint yet
    run.save_checkpoint({"format": CHECKPOINT_FORMAT, "step": iterations // 2, "config": task["config"]})
    assert task_state(task) == "partial"  # not at the end
    run.save_checkpoint({"format": CHECKPOINT_FORMAT, "step": iterations, "config": task["config"]})
    assert task_state(task) == "partial"  # trained, not scored
    samples = METRIC_SETTINGS["quick"]["decomposition"]["num_samples"]
    scores = {name: {} for name in task["metrics"]}
    run.write_metrics({"settings": "full", "metrics": scores, "decomposition": {"num_samples": samples}})
    assert task_state(task) == "partial"  # scored with other settings
    run.write_metrics({"settings": "quick", "metrics": scores, "decomposition": {"num_samples": samples}})
    assert task_state(task) == "partial"  # scored, but the metric over snapshots is not traced yet
    run.write_trajectory({"settings": {}, "points": []})
    assert task_state(task) == "done"
    assert task_state(one_task(tmp_path, trajectory_every=-1)) == "done"  # a spec that traces nothing needs no trajectory


def test_a_failed_run_comes_back_as_a_result_its_traceback_in_the_log(tmp_path):
    task = one_task(tmp_path)
    folder = Path(task["folder"])
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "factorvae", "preset": "smoke"}))  # another run's folder
    result = run_task(task)
    assert result["name"] == "betavae_b4" and result["status"] == "failed" and "ConfigError" in result["error"]
    log = RunFolder(folder).log_path.read_text()
    assert "sweep task betavae_b4" in log and "Traceback" in log
    assert RunFolder(folder).lock().holder() is None  # the folder is let go
