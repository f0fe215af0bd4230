"""Where a sweep's runs execute: worker processes on this machine, or jobs through submitit.

    run_sweep(spec, out)                                    # local worker processes, sized from the cores
    run_sweep(spec, out, engine="submitit")                 # SLURM when on a cluster, else submitit's local executor
    run_sweep(spec, out, engine="submitit", cluster="slurm", slurm={"partition": "gpu"})

Why submitit is the engine for more than one machine: it is how most research groups already reach their
clusters (SLURM), it is a small pure-Python package (the ``sweep`` extra) where Ray brings a runtime of
hundreds of MB, and its local executor runs the same jobs as real subprocesses, so the test of the engine
is not a mock. A job runs :func:`fvae_lib.sweep.run_task`, which resumes from the run folder: a job that
is pre-empted or times out is picked up by running the sweep again.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from .config import ConfigError, resolve_device
from .storage import atomic_write_bytes
from .sweep import SweepSpec, result_row, run_task, task_state, write_table, write_trajectories

ENGINES = ("local", "submitit")
# submitit's parameters shared by every cluster; any other --slurm KEY is passed to SLURM as slurm_KEY
GENERIC_PARAMETERS = {"timeout_min", "mem_gb", "gpus_per_node", "cpus_per_task", "nodes", "tasks_per_node", "name"}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover -- macOS, Windows
        return os.cpu_count() or 1


def plan_workers(tasks: int, device: str = "auto", workers: int = 0, threads: int = 0, cores: int | None = None) -> tuple[int, int]:
    """(runs at once, threads per run). Default on a CPU: one run per core, one thread each.

    On 2 cores, two one-thread runs trained 1.20x (FactorVAE) and 1.37x (β-VAE) more iterations per second in
    all than one two-thread run (benchmarks/README.md, "Sweeps"): small convolutions do not split well over
    threads. On a GPU the default is one run at a time, with the cores as its threads.
    """
    cores = cores or usable_cores()
    if workers < 0 or threads < 0:
        raise ConfigError(f"workers and threads must be >= 0 (0: choose from the cores), got {workers} and {threads}")
    if resolve_device(device).type == "cuda":
        workers = workers or 1
    else:
        workers = workers or max(1, min(cores, tasks) // max(1, threads or 1))
    workers = max(1, min(workers, max(1, tasks)))
    threads = threads or max(1, cores // workers)
    return workers, threads


def _outcome(handle, failure) -> dict | None:
    """What a finished run returned (a future or a submitit job), None while it runs; a run whose process or job
    died outside :func:`run_task` (killed, out of memory, timed out, node lost) is a failed run, ``failure(err)``
    saying why."""
    if not handle.done():
        return None
    try:
        return handle.result()
    except Exception as err:  # noqa: BLE001 -- reported in the table; the other runs go on
        return dict(status="failed", error=failure(err))


class LocalEngine:
    """Worker processes on this machine ("spawn": each run gets a fresh interpreter and its own thread count)."""

    name = "local"

    def __init__(self, workers: int):
        kwargs = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), **kwargs)
        self.max_in_flight = workers

    def submit(self, task: dict):
        return self.pool.submit(run_task, task)

    @staticmethod
    def outcome(handle) -> dict | None:
        return _outcome(handle, lambda err: f"worker process died ({type(err).__name__}); run the sweep again to resume")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class SubmititEngine:
    """Jobs through submitit: SLURM (``cluster="slurm"``, or auto-detected) or its local executor."""

    name = "submitit"

    def __init__(self, out: Path, threads: int, cluster: str | None = None, slurm: dict | None = None,
                 max_in_flight: int = 0, timeout_min: int = 24 * 60):
        try:
            import submitit
        except ImportError:
            raise ConfigError("the submitit engine needs the sweep extra: pip install 'fvae_lib[sweep]' "
                              "(or use --engine local)") from None
        self.executor = submitit.AutoExecutor(folder=out / ".submitit" / "%j", cluster=cluster)
        params = dict(timeout_min=timeout_min, cpus_per_task=threads, name="fvae-sweep")
        if slurm and self.executor.cluster != "slurm":
            raise ConfigError(f"--slurm options need a SLURM cluster; submitit found {self.executor.cluster!r}")
        # submitit's shared parameters go as they are; the rest are SLURM's own (partition, account, ...)
        params.update({k if k in GENERIC_PARAMETERS else f"slurm_{k}": v for k, v in (slurm or {}).items()})
        try:
            self.executor.update_parameters(**params)
        except (ValueError, NameError) as err:
            raise ConfigError(f"--slurm: {str(err).splitlines()[0]}") from None
        # the local executor starts every job at once: keep it to the workers; SLURM queues them itself
        self.max_in_flight = 10**9 if self.executor.cluster == "slurm" else max(1, max_in_flight)

    def submit(self, task: dict):
        return self.executor.submit(run_task, task)

    @staticmethod
    def outcome(job) -> dict | None:
        return _outcome(job, lambda err: f"job {job.job_id} failed: {str(err).splitlines()[0][:200]}; run the sweep again to resume")

    def close(self) -> None:
        pass


def _progress_line(task: dict) -> tuple[int, str] | None:
    """(step, a log line) from a running run's history, or None before its first logged window."""
    path = Path(task["folder"]) / "history.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            last = f.read().splitlines()[-1]
        entry = json.loads(last)
    except (OSError, ValueError, IndexError):
        return None
    terms = "  ".join(f"{k} {entry[k]:.3g}" for k in ("recon", "kl", "tc", "d_acc") if k in entry)
    speed = f"  {entry['it_per_s']:.1f} it/s" if "it_per_s" in entry else ""
    return entry["step"], f"{task['name']}: step {entry['step']}/{task['config']['iterations']}  {terms}{speed}"


def run_sweep(spec: SweepSpec, out: str | os.PathLike | None = None, engine: str = "local", workers: int = 0,
              threads: int = 0, cluster: str | None = None, slurm: dict | None = None, progress: bool = True,
              poll_s: float = 2.0) -> list[dict]:
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
    workers, threads = plan_workers(count, spec.device, workers, threads)
    tasks = spec.tasks(out, threads=threads)
    atomic_write_bytes(out / "sweep.json", json.dumps(spec.to_dict(), indent=1).encode())
    states = {t["name"]: task_state(t) for t in tasks}  # once: it reads every run's checkpoint
    todo = [t for t in tasks if states[t["name"]] != "done"]
    runner = LocalEngine(workers) if engine == "local" else SubmititEngine(out, threads, cluster, slurm, max_in_flight=workers)
    say = tqdm.write if progress else print
    say(f"sweep: {len(tasks)} runs in {out}; {len(tasks) - len(todo)} already trained and scored; "
        f"{runner.name} engine, up to {min(runner.max_in_flight, max(1, len(todo)))} at once, {threads} thread(s) each")
    outcomes: dict[str, dict] = {t["name"]: dict(status="finished", error="") for t in tasks if states[t["name"]] == "done"}
    running: dict[str, tuple[dict, object]] = {}
    reported: dict[str, int] = {}
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="sweep", unit="run", disable=not progress)
    queue = list(todo)
    try:
        while queue or running:
            while queue and len(running) < runner.max_in_flight:
                task = queue.pop(0)
                running[task["name"]] = (task, runner.submit(task))
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
                say(f"{name}: {result['status']}" + (f" -- {result['error']} (log: {task['folder']}/sweep.log)" if result.get("error") else ""))
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

        say(f"published to {publish(out, spec, rows)}")
    return rows


def write_results(out: Path, tasks: list[dict], outcomes: dict[str, dict]) -> list[dict]:
    rows = [result_row(t, outcomes.get(t["name"])) for t in tasks]
    write_table(out / "results", rows)
    write_trajectories(out / "trajectories.csv", tasks)
    return rows
