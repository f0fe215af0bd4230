"""The local engine: each run of a sweep in a process of its own on this machine.

A run whose process is killed (an OOM kill, a ``kill -9``) fails alone: the others are other processes, and the
driver sees it as failed and goes on with the queue. A run that another process is already doing (a worker left
by a driver that was killed) is followed through its folder's lock instead of being started twice.
"""
from __future__ import annotations

import multiprocessing

from .runs import RunFolder
from .sweep_task import run_task, task_state


def run_outcome(handle, failure) -> dict | None:
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
        """A handle on the process of this machine already holding this run's folder, else None."""
        lock = RunFolder(task["folder"]).lock()
        if not lock.held_elsewhere():
            return None
        return AttachedRun(task, lock.holder() or {}, lock.held_elsewhere)

    @staticmethod
    def outcome(handle) -> dict | None:
        return run_outcome(handle, lambda err: f"worker process died ({err}); run the sweep again to resume it")

    def close(self) -> None:
        for run in self._runs:  # on Ctrl-C the children stop too (same terminal); reap them
            run.process.join()
