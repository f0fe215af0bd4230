"""One run of a sweep, as a worker process or a job runs it: train (or resume), score, trace the metric over
snapshots, holding the run folder throughout. :func:`task_state` says how far a run has got."""
from __future__ import annotations

import os
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch

from .config import TrainConfig
from .evaluate import METRIC_SETTINGS, evaluate_run
from .runs import RunFolder
from .trajectory import write_trajectory


def task_state(task: dict) -> str:
    """'done' (trained and scored), 'partial' (some work left) or 'new' (nothing there yet)."""
    run = RunFolder(task["folder"])
    if not run.exists():
        return "new"
    if run.trained_steps()[0] < int(task["config"]["iterations"]):  # no checkpoint yet, or not at the end
        return "partial"
    return "done" if _scored(task) and _traced(task) else "partial"


def _scored(task: dict) -> bool:
    run = RunFolder(task["folder"])
    result = run.read_metrics()
    if result is None:
        return False
    return (run.metrics_are_current() and result.get("settings") == task["settings"] and set(task["metrics"]) <= set(result.get("metrics", {}))
            and result.get("decomposition", {}).get("num_samples") == _decomposition_samples(task))


def _decomposition_samples(task: dict) -> int:
    """The Monte Carlo samples of a task's KL decompositions: its own, else its metric settings'."""
    return task.get("decomposition_samples") or METRIC_SETTINGS[task["settings"]]["decomposition"]["num_samples"]


def _traced(task: dict) -> bool:
    if task["trajectory_every"] < 0:
        return True
    points = (RunFolder(task["folder"]).read_trajectory() or {}).get("points")
    if points is None:
        return False
    return not task.get("trajectory_decomposition") or all("total_correlation" in p for p in points)


def run_task(task: dict) -> dict:
    """Train, score and trace one run; never raises: a failure comes back as ``status: failed``.

    Everything the run prints goes to ``<run>/sweep.log``.
    """
    run = Path(task["folder"])
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(RunFolder(run).log_path, "a", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} sweep task {task['name']} (pid {os.getpid()})")
        try:
            with RunFolder(run).lock(what="sweep task"):  # train, score and trace: one process at a time
                _run_task(task)
            status, error = "finished", ""
        except Exception as err:  # noqa: BLE001 -- reported in the table; the other runs go on
            traceback.print_exc()
            status, error = "failed", f"{type(err).__name__}: {err}".splitlines()[0][:300]
        except BaseException as err:  # Ctrl-C, or submitit's exit to requeue a pre-empted job: not a result
            print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} stopped ({type(err).__name__}); the run resumes from its last checkpoint")
            raise
    return dict(name=task["name"], status=status, error=error, seconds=round(time.perf_counter() - t0, 1))


def _run_task(task: dict) -> None:
    from .train import Trainer  # here, not at the top: the engines import this module in light processes

    run = Path(task["folder"])
    config = TrainConfig.from_dict(task["config"])
    if config.threads:
        torch.set_num_threads(config.threads)
    trainer = Trainer(config, run, resume=RunFolder(run).exists(), progress=False)
    if trainer.step < config.iterations:
        trainer.run()
    data = trainer.data
    del trainer
    if not _scored(task):
        evaluate_run(run, settings=task["settings"], metrics=tuple(task["metrics"]), data=data, device=config.device,
                     decomposition_samples=task.get("decomposition_samples"))
    if not _traced(task):
        write_trajectory(run, task["trajectory_every"] or config.snapshot_every, data, config.device,
                         decomposition_samples=_decomposition_samples(task) if task.get("trajectory_decomposition") else None)
