"""The submitit engine: a sweep's runs as jobs, on SLURM or submitit's local executor.

On SLURM every run goes in one job array; a timed-out or pre-empted job is requeued and resumes from its run
folder; the job ids are recorded so that a rerun reattaches to jobs still queued or running.
"""
from __future__ import annotations

import json
from pathlib import Path

from .config import ConfigError
from .engine_local import AttachedRun, run_outcome
from .runs import RunFolder
from .storage import atomic_write_bytes
from .sweep_task import run_task

# submitit's parameters shared by every cluster; any other --slurm KEY is passed to SLURM as slurm_KEY
GENERIC_PARAMETERS = {"timeout_min", "mem_gb", "gpus_per_node", "cpus_per_task", "nodes", "tasks_per_node", "name"}
JOBS_FILE = "jobs.json"  # in <sweep>/.submitit: the job id of each run's latest submission, for a rerun to reattach


try:  # submitit's own base class, where it is installed: requeued on a timeout or a pre-emption
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover -- the sweep extra is missing: the engine refuses to start
    _Checkpointable = object


class SweepJob(_Checkpointable):
    """A sweep run as a submitit job. On a timeout or a pre-emption (SLURM's signal, submitit's USR2) submitit
    calls :meth:`checkpoint` and requeues the same call; the requeued job resumes from the run folder's last
    checkpoint (:func:`fvae_lib.sweep_task.run_task`), so nothing is trained twice beyond the last save."""

    def __call__(self, task: dict) -> dict:
        return run_task(task)

    def checkpoint(self, task: dict):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SweepJob(), task)


def cluster_kind(cluster: str | None) -> str | None:
    """The submitit cluster a sweep runs on: the one asked for, else the one submitit finds here (slurm, local...)."""
    try:
        import submitit
    except ImportError:
        return cluster
    return cluster or submitit.AutoExecutor.which()


def _parameter_type(key: str):
    """The type submitit takes for a --slurm key: its shared parameters' own, else the annotation of SLURM's."""
    import typing

    import submitit
    from submitit.slurm.slurm import _make_sbatch_string

    typed = submitit.AutoExecutor._typed_parameters()
    if key in typed:
        return typed[key]
    hint = typing.get_type_hints(_make_sbatch_string).get(key)
    kinds = [k for k in typing.get_args(hint) or (hint,) if k is not type(None)]
    return kinds[0] if len(kinds) == 1 and kinds[0] in (int, float, bool) else None


def parameter_value(key: str, value):
    """A --slurm value as submitit wants it (ints, floats and booleans typed), with a clear error."""
    if key not in GENERIC_PARAMETERS:
        from submitit.slurm.slurm import SlurmExecutor

        if key not in SlurmExecutor._valid_parameters():
            known = sorted(GENERIC_PARAMETERS | SlurmExecutor._valid_parameters())
            raise ConfigError(f"--slurm {key}: not a parameter submitit knows; known: {', '.join(known)}")
    kind = _parameter_type(key)
    if kind is None or not isinstance(value, str):
        ok = kind is None or (isinstance(value, kind) if kind is not float else isinstance(value, (int, float)))
        if not ok or (isinstance(value, bool) and kind in (int, float)):
            raise ConfigError(f"--slurm {key}={value!r}: {key} takes a {kind.__name__}")
        return value
    if kind is bool:
        if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"--slurm {key}={value!r}: {key} takes true or false")
        return value.lower() in ("1", "true", "yes")
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"--slurm {key}={value!r}: {key} takes a {kind.__name__}, e.g. {key}=1") from None


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
        slurm = {k: parameter_value(k, v) for k, v in (slurm or {}).items()}  # a bad value: a clear error first
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
        if self.cluster != "slurm":  # submitit's local executor: the job's process holds the run folder's lock
            lock = RunFolder(task["folder"]).lock()
            return AttachedRun(task, lock.holder() or {}, lock.held_elsewhere) if lock.held_elsewhere() else None
        job = self.executor._executor.job_class(folder=self.executor.folder, job_id=entry["job_id"])
        try:  # sacct's answer; a job sacct does not know yet (UNKNOWN) counts as not done
            done = job.watcher.is_done(job.job_id, mode="force")
        except Exception:  # noqa: BLE001 -- sacct unreachable: submit again rather than wait blind
            return None
        return None if done else job

    @staticmethod
    def outcome(job) -> dict | None:
        return run_outcome(job, lambda err: f"job {getattr(job, 'job_id', '?')} failed: {str(err).splitlines()[0][:200]}; "
                        "run the sweep again to resume")

    def close(self) -> None:
        pass
