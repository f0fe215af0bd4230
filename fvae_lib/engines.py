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
import socket
import time
from pathlib import Path

from tqdm.auto import tqdm

from .config import ConfigError, resolve_device
from .storage import FolderLock, atomic_write_bytes, process_alive
from .threads import available_cores
from .sweep import SweepSpec, result_row, run_task, task_state, write_table, write_trajectories

ENGINES = ("local", "submitit")
# submitit's parameters shared by every cluster; any other --slurm KEY is passed to SLURM as slurm_KEY
GENERIC_PARAMETERS = {"timeout_min", "mem_gb", "gpus_per_node", "cpus_per_task", "nodes", "tasks_per_node", "name"}
JOBS_FILE = "jobs.json"  # in <sweep>/.submitit: the job id of each run's latest submission, for a rerun to reattach
ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
                       "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT"}


def plan_workers(tasks: int, device: str = "auto", workers: int = 0, threads: int = 0, cores: int | None = None) -> tuple[int, int]:
    """(runs at once, threads per run). Default on a CPU: one run per core, one thread each.

    On 2 cores, two one-thread runs trained 1.20x (FactorVAE) and 1.37x (β-VAE) more iterations per second in
    all than one two-thread run (benchmarks/README.md, "Sweeps"): small convolutions do not split well over
    threads. On a GPU the default is one run at a time, with the cores as its threads. The cores are those
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


def _outcome(handle, failure) -> dict | None:
    """What a finished run returned (a local process or a submitit job), None while it runs; a run whose process or
    job died outside :func:`run_task` (killed, out of memory, timed out, node lost) is a failed run, ``failure(err)``
    saying why."""
    if not handle.done():
        return None
    try:
        return handle.result()
    except Exception as err:  # noqa: BLE001 -- reported in the table; the other runs go on
        return dict(status="failed", error=failure(err))


class WorkerDied(RuntimeError):
    """A run's process ended without a result: killed (an OOM kill, say) or crashed."""


def _child(task: dict, conn) -> None:
    conn.send(run_task(task))
    conn.close()


class LocalRun:
    """One run in a process of its own ("spawn": a fresh interpreter with its own thread count). A run whose
    process is killed takes nothing down with it: the others are other processes, and the driver sees this one
    as failed."""

    def __init__(self, ctx, task: dict):
        self._recv, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_child, args=(task, send), name=f"fvae-{task['name']}")
        self.process.start()
        send.close()  # the child holds the only sending end: its death reads as end of file
        self._result: dict | None = None

    def _poll(self) -> None:
        if self._result is None and self._recv.poll():
            try:
                self._result = self._recv.recv()
            except (EOFError, OSError):
                pass

    def done(self) -> bool:
        self._poll()
        return self._result is not None or not self.process.is_alive()

    def result(self) -> dict:
        self.process.join()
        self._poll()
        if self._result is None:
            code = self.process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise WorkerDied(how)
        return self._result


class AttachedRun:
    """A run some other process is already doing (left by an earlier driver, or another user's sweep): done when
    that process lets go of the run folder's lock; its outcome read from the folder."""

    def __init__(self, task: dict, holder: dict, alive):
        self.task, self.holder, self._alive = task, holder, alive

    def done(self) -> bool:
        return not self._alive()

    def result(self) -> dict:
        if task_state(self.task) == "done":
            return dict(name=self.task["name"], status="finished", error="")
        raise WorkerDied(f"process {self.holder.get('pid')} that held it ended before the run was done")


class LocalEngine:
    """Each run in a process of its own on this machine, up to ``workers`` at once."""

    name = "local"

    def __init__(self, workers: int):
        self.ctx = multiprocessing.get_context("spawn")
        self.max_in_flight = workers
        self._runs: list[LocalRun] = []

    def submit_many(self, tasks: list[dict]) -> list:
        runs = [LocalRun(self.ctx, task) for task in tasks]
        self._runs += runs
        return runs

    def attach(self, task: dict):
        """A handle on the process already holding this run's folder (on this host), else None."""
        lock = FolderLock(task["folder"])
        holder = lock.holder()
        if not holder or holder.get("host") != socket.gethostname() or not process_alive(int(holder.get("pid", -1))):
            return None
        pid = int(holder["pid"])
        return AttachedRun(task, holder, lambda: process_alive(pid) and (lock.holder() or {}).get("pid") == pid)

    @staticmethod
    def outcome(handle) -> dict | None:
        return _outcome(handle, lambda err: f"worker process died ({err}); run the sweep again to resume it")

    def close(self) -> None:
        for run in self._runs:  # on Ctrl-C the children stop too (same terminal); reap them
            run.process.join()


try:  # submitit's own base class, where it is installed: requeued on a timeout or a pre-emption
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover -- the sweep extra is missing: the engine refuses to start
    _Checkpointable = object


class SweepJob(_Checkpointable):
    """A sweep run as a submitit job. On a timeout or a pre-emption (SLURM's signal, submitit's USR2) submitit
    calls :meth:`checkpoint` and requeues the same call; the requeued job resumes from the run folder's last
    checkpoint (:func:`fvae_lib.sweep.run_task`), so nothing is trained twice beyond the last save."""

    def __call__(self, task: dict) -> dict:
        return run_task(task)

    def checkpoint(self, task: dict):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SweepJob(), task)


def _cluster(cluster: str | None) -> str | None:
    try:
        import submitit
    except ImportError:
        return cluster
    return cluster or submitit.AutoExecutor.which()


def _parameter_value(key: str, value):
    """A --slurm value as submitit wants it: ints and floats for the typed parameters, with a clear error."""
    import submitit

    typed = submitit.AutoExecutor._typed_parameters()
    if key in typed and isinstance(value, str):
        kind = typed[key]
        try:
            value = kind(value) if kind is not bool else value.lower() in ("1", "true", "yes")
        except ValueError:
            raise ConfigError(f"--slurm {key}={value!r}: {key} takes a {kind.__name__}, e.g. {key}=1") from None
    if key in typed and not isinstance(value, (typed[key], int) if typed[key] is float else typed[key]):
        raise ConfigError(f"--slurm {key}={value!r}: {key} takes a {typed[key].__name__}")
    if key not in GENERIC_PARAMETERS:
        from submitit.slurm.slurm import SlurmExecutor

        if key not in SlurmExecutor._valid_parameters():
            known = sorted(GENERIC_PARAMETERS | SlurmExecutor._valid_parameters())
            raise ConfigError(f"--slurm {key}: not a parameter submitit knows; known: {', '.join(known)}")
    return value


class SubmititEngine:
    """Jobs through submitit: SLURM (``cluster="slurm"``, or auto-detected) or its local executor.

    On SLURM every run of a sweep goes in one job array (``executor.batch()``), at most ``workers`` running at
    once (``slurm_array_parallelism``; 0: as many as SLURM allows). Each job asks for ``cpus_per_task`` CPUs
    (the spec's ``threads``, else one per run) and ``mem_gb`` (the spec's), never the login node's cores. The job
    ids go into ``<sweep>/.submitit/jobs.json``: a rerun of the sweep reattaches to the jobs still queued or
    running instead of submitting them again.
    """

    name = "submitit"

    def __init__(self, out: Path, threads: int, cluster: str | None = None, slurm: dict | None = None,
                 max_in_flight: int = 0, timeout_min: int = 24 * 60, mem_gb: float | None = None):
        try:
            import submitit
        except ImportError:
            raise ConfigError("the submitit engine needs the sweep extra: pip install 'fvae_lib[sweep]' "
                              "(or use --engine local)") from None
        slurm = {k: _parameter_value(k, v) for k, v in (slurm or {}).items()}  # a bad value: a clear error first
        try:
            self.executor = submitit.AutoExecutor(folder=out / ".submitit" / "%j", cluster=cluster)
        except ValueError as err:
            raise ConfigError(f"--cluster {cluster}: {err}") from None
        self.cluster = self.executor.cluster
        if slurm and self.cluster != "slurm":
            raise ConfigError(f"--slurm options need a SLURM cluster; submitit found {self.cluster!r}")
        params = dict(timeout_min=timeout_min, cpus_per_task=threads, name="fvae-sweep")
        if mem_gb:
            params["mem_gb"] = mem_gb
        if self.cluster == "slurm" and max_in_flight:
            params["slurm_array_parallelism"] = max_in_flight
        # submitit's shared parameters go as they are; the rest are SLURM's own (partition, account, ...)
        params.update({k if k in GENERIC_PARAMETERS else f"slurm_{k}": v for k, v in slurm.items()})
        try:
            self.executor.update_parameters(**params)
        except (ValueError, NameError, AssertionError, TypeError) as err:
            raise ConfigError(f"--slurm: {str(err).splitlines()[0]}") from None
        self.threads = params["cpus_per_task"]
        # the local executor starts every job at once: keep it to the workers; SLURM queues the array itself
        self.max_in_flight = 10**9 if self.cluster == "slurm" else max(1, max_in_flight)
        self.jobs_file = out / ".submitit" / JOBS_FILE

    def _recorded(self) -> dict:
        try:
            return json.loads(self.jobs_file.read_text())
        except (OSError, ValueError):
            return {}

    def submit_many(self, tasks: list[dict]) -> list:
        with self.executor.batch():  # one job array on SLURM
            jobs = [self.executor.submit(SweepJob(), task) for task in tasks]
        recorded = self._recorded()
        recorded.update({t["name"]: dict(job_id=str(j.job_id), cluster=self.cluster) for t, j in zip(tasks, jobs)})
        self.jobs_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.jobs_file, json.dumps(recorded, indent=1).encode())
        return jobs

    def attach(self, task: dict):
        """The job of an earlier submission of this run, if it is still queued or running; else None."""
        entry = self._recorded().get(task["name"])
        if not entry or entry.get("cluster") != self.cluster:
            return None
        job = self.executor._executor.job_class(folder=self.executor.folder, job_id=entry["job_id"])
        if self.cluster == "slurm":
            try:
                state = job.state.split()[0].upper()
            except Exception:  # noqa: BLE001 -- sacct unreachable: submit again rather than wait blind
                return None
            return job if state in ACTIVE_SLURM_STATES else None
        # submitit's local executor: the job id is its controller's pid
        pid = int(entry["job_id"]) if entry["job_id"].isdigit() else -1
        if not process_alive(pid):
            return None
        return AttachedRun(task, dict(pid=pid), lambda: process_alive(pid) and not job.paths.result_pickle.exists())

    @staticmethod
    def outcome(job) -> dict | None:
        return _outcome(job, lambda err: f"job {getattr(job, 'job_id', '?')} failed: {str(err).splitlines()[0][:200]}; "
                        "run the sweep again to resume")

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
        threads = int(_parameter_value("cpus_per_task", slurm.pop("cpus_per_task", 0)) or threads or spec.threads or 1)
        workers = workers or (0 if _cluster(cluster) == "slurm" else plan_workers(count, spec.device, 0, threads)[0])
    else:
        workers, threads = plan_workers(count, spec.device, workers, threads or spec.threads or 0)
    tasks = spec.tasks(out, threads=threads)
    atomic_write_bytes(out / "sweep.json", json.dumps(dict(spec.to_dict(), resolved=resolved_environment(spec, threads)),
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

        try:
            say(f"published to {publish(out, spec, rows, overwrite=overwrite)}")
        except ConfigError as err:  # an incomplete sweep, or published results not to be overwritten
            say(f"not published: {err}")
    return rows


def resolved_environment(spec: SweepSpec, threads: int) -> dict:
    """What the spec's ``auto`` settings resolved to here, and the code that ran: recorded in sweep.json."""
    import platform
    import subprocess

    import torch

    from .config import TrainConfig, resolve_fast_path
    from .data.dsprites import resolve_source

    config = TrainConfig.from_dict(spec.tasks(threads=threads)[0]["config"])
    device = resolve_device(config.device)
    precision, channels_last = resolve_fast_path(config, device)
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
