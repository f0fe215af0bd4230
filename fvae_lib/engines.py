"""Where a sweep's runs execute: worker processes on this machine, or jobs through submitit.

    run_sweep(spec, out)                                    # local worker processes, sized from the cores
    run_sweep(spec, out, engine="submitit")                 # SLURM when on a cluster, else submitit's local executor
    run_sweep(spec, out, engine="submitit", cluster="slurm", slurm={"partition": "gpu"})

Why submitit is the engine for more than one machine: it is how most research groups already reach their
clusters (SLURM), it is a small pure-Python package (the ``sweep`` extra) where Ray brings a runtime of
hundreds of MB, and its local executor runs the same jobs as real subprocesses, so the test of the engine
is not a mock. A run executes :func:`fvae_lib.sweep_task.run_task`, which resumes from the run folder. The engines
themselves: :mod:`fvae_lib.engine_local` (a process per run) and :mod:`fvae_lib.engine_submitit` (job arrays,
requeue on pre-emption, reattaching after a driver's death).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from .config import ConfigError, resolve_device
from .engine_local import LocalEngine
from .engine_submitit import SubmititEngine, cluster_kind, parameter_value
from .runs import RunFolder
from .storage import atomic_write_bytes
from .sweep import SweepSpec
from .sweep_task import task_state
from .sweep_table import result_row, write_table, write_trajectories
from .threads import available_cores

ENGINES = ("local", "submitit")


def plan_workers(tasks: int, device: str = "auto", workers: int = 0, threads: int = 0, cores: int | None = None) -> tuple[int, int]:
    """(runs at once, threads per run). Default on a CPU: one run per core, one thread each.

    Small convolutions do not split well over threads, so on a CPU several one-thread runs do more work than
    one run with every core (measured: benchmarks/README.md, "Sweeps"). On a GPU the default is one run at a time, with the cores as its threads. The cores are those
    this process may use, container CPU quota included (:func:`fvae_lib.threads.available_cores`).
    """
    cores = cores or available_cores()
    if workers < 0 or threads < 0:
        raise ConfigError(f"workers and threads must be >= 0 (0: choose from the cores), got {workers} and {threads}")
    if resolve_device(device).type == "cuda":
        workers = workers or 1
    else:
        workers = workers or max(1, min(cores, tasks) // max(1, threads or 1))
    workers = max(1, min(workers, max(1, tasks)))
    threads = threads or max(1, cores // workers)
    return workers, threads


def _progress_line(task: dict) -> tuple[int, str] | None:
    """(step, a log line) from a running run's history, or None before its first logged window."""
    entry = RunFolder(task["folder"]).last_history_row()
    if entry is None:
        return None
    terms = "  ".join(f"{k} {entry[k]:.3g}" for k in ("recon", "kl", "tc", "d_acc") if k in entry)
    speed = f"  {entry['it_per_s']:.1f} it/s" if "it_per_s" in entry else ""
    return entry["step"], f"{task['name']}: step {entry['step']}/{task['config']['iterations']}  {terms}{speed}"


def run_sweep(spec: SweepSpec, out: str | os.PathLike | None = None, engine: str = "local", workers: int = 0,
              threads: int = 0, cluster: str | None = None, slurm: dict | None = None, progress: bool = True,
              poll_s: float = 2.0, overwrite: bool = False) -> list[dict]:
    """Train, score and tabulate every run of ``spec`` into ``out``; returns the table's rows.

    Runs already trained and scored are skipped; interrupted ones resume. A run that fails is reported in
    its row (status ``failed``, the error, ``<run>/sweep.log``) and the others go on. The table is rewritten
    as each run ends, so an interrupted sweep still leaves one.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose from {ENGINES}")
    out = Path(out or spec.out or "runs/sweep")
    out.mkdir(parents=True, exist_ok=True)
    count = len(spec.seeds) * sum(len(values) for values in spec.grid.values())
    if engine == "submitit":  # the jobs run elsewhere: their CPUs come from --slurm, --threads or the spec, never this node's
        slurm = {**spec.slurm, **(slurm or {})}
        threads = int(parameter_value("cpus_per_task", slurm.pop("cpus_per_task", 0)) or threads or spec.threads or 1)
        workers = workers or (0 if cluster_kind(cluster) == "slurm" else plan_workers(count, spec.device, 0, threads)[0])
    else:
        workers, threads = plan_workers(count, spec.device, workers, threads or spec.threads or 0)
    tasks = spec.tasks(out, threads=threads)
    atomic_write_bytes(out / "sweep.json", json.dumps(dict(spec.to_dict(), resolved=resolved_environment(tasks[0]["config"], threads)),
                                                      indent=1).encode())
    states = {t["name"]: task_state(t) for t in tasks}  # once: it reads every run's checkpoint
    todo = [t for t in tasks if states[t["name"]] != "done"]
    runner = LocalEngine(workers) if engine == "local" else SubmititEngine(out, threads, cluster, slurm, max_in_flight=workers,
                                                                          mem_gb=spec.mem_gb)
    say = tqdm.write if progress else print
    say(f"sweep: {len(tasks)} runs in {out}; {len(tasks) - len(todo)} already trained and scored; "
        f"{runner.name} engine, up to {min(runner.max_in_flight, max(1, len(todo)))} at once, {threads} thread(s) each")
    outcomes: dict[str, dict] = {t["name"]: dict(status="finished", error="") for t in tasks if states[t["name"]] == "done"}
    running: dict[str, tuple[dict, object]] = {}
    # a run another process is still doing (its worker outlived a killed driver, or its job is still queued or
    # running) is followed, not started a second time
    for task in todo:
        handle = runner.attach(task)
        if handle is not None:
            running[task["name"]] = (task, handle)
            say(f"{task['name']}: already running (left by an earlier sweep); following it instead of starting it again")
    reported: dict[str, int] = {}
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="sweep", unit="run", disable=not progress)
    queue = [t for t in todo if t["name"] not in running]
    try:
        while queue or running:
            free = runner.max_in_flight - len(running)
            if queue and free > 0:
                batch, queue = queue[:free], queue[free:]
                for task, handle in zip(batch, runner.submit_many(batch)):
                    running[task["name"]] = (task, handle)
                    say(f"{task['name']}: started ({states[task['name']]})")
            time.sleep(poll_s)
            for name, (task, handle) in list(running.items()):
                line = _progress_line(task)
                step_of_tenth = max(1, task["config"]["iterations"] // 10)
                if line and line[0] // step_of_tenth > reported.get(name, 0) // step_of_tenth:
                    reported[name] = line[0]
                    say(line[1])
                result = runner.outcome(handle)
                if result is None:
                    continue
                del running[name]
                outcomes[name] = result
                bar.update(1)
                say(f"{name}: {result['status']}" + (f" -- {result['error']} (log: {RunFolder(task['folder']).log_path})" if result.get("error") else ""))
                write_results(out, tasks, outcomes)
            failed = sum(o["status"] == "failed" for o in outcomes.values())
            bar.set_postfix(running=len(running), failed=failed, refresh=False)
    finally:
        bar.close()
        runner.close()
    rows = write_results(out, tasks, outcomes)
    failed = [r["name"] for r in rows if r["status"] == "failed"]
    say(f"sweep: {sum(r['status'] == 'finished' for r in rows)} of {len(rows)} runs finished"
        + (f"; failed: {', '.join(failed)} (run the same command again to retry them)" if failed else "")
        + f"\nresults: {out / 'results.csv'}")
    if spec.publish.get("folder"):
        from .reference import publish

        try:
            say(f"published to {publish(out, spec, rows, overwrite=overwrite)}")
        except ConfigError as err:  # an incomplete sweep, or published results not to be overwritten
            say(f"not published: {err}")
    return rows


def resolved_environment(run_config: dict, threads: int) -> dict:
    """What a sweep's ``auto`` settings (those of ``run_config``, one of its runs' configs) resolved to here, and the
    code that ran: recorded in sweep.json."""
    import platform
    import subprocess

    import torch

    from .config import TrainConfig, resolve_fast_path
    from .data.dsprites import resolve_source

    config = TrainConfig.from_dict(run_config)
    try:
        device = resolve_device(config.device)
        precision, channels_last = resolve_fast_path(config, device)
    except ConfigError:  # a GPU sweep specified on a login node without one: resolved on the jobs' nodes
        device, precision, channels_last = f"{config.device} (on the jobs' nodes)", config.precision, config.channels_last
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    from . import __version__

    return dict(device=str(device), precision=precision, channels_last=channels_last, data_source=resolve_source(config.data_source),
                threads=threads, torch=torch.__version__, fvae_lib=__version__, commit=commit, python=platform.python_version(),
                cpu=platform.processor() or platform.machine())


def write_results(out: Path, tasks: list[dict], outcomes: dict[str, dict]) -> list[dict]:
    rows = [result_row(t, outcomes.get(t["name"])) for t in tasks]
    write_table(out / "results", rows)
    write_trajectories(out / "trajectories.csv", tasks)
    return rows
