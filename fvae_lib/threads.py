"""CPU threads for training on a machine that other programs share.

A learner trains beside a browser, other kernels and a metric job. PyTorch's CPU kernels split each
operation across all cores with OpenMP and wait for every thread at the end of it; when another process
holds one of the cores, every operation waits for the thread that lost its core, and 2 threads on 2
cores fall to about a quarter of their idle rate while 1 thread keeps more than half of it
(``benchmarks/README.md``, the co-tenant benchmark).

:class:`ThreadPolicy` watches what the rest of the machine is doing, from the kernel's own CPU counters
(``/proc/stat``) less this process's CPU time, and gives training the cores nobody else is using:
all of them on an idle machine, one fewer for each core another process keeps busy. It decides from
load, never from timing, so on an idle machine it never changes anything. It counts only the CPUs this
process may run on; a container's CPU quota (cgroup ``cpu.max``) without pinning is not seen, so there
pin ``threads`` to the quota. Changing the thread count can change the last bits of fp32 sums on some
CPUs; pin ``threads`` to a number where a run must be reproducible bit for bit on a shared machine.
"""
from __future__ import annotations

import os
import time

import torch

CHECK_EVERY_S = 1.0  # how often the load is looked at (one read of /proc/stat)
BUSY_CORE = 0.5  # another process using at least this share of a core takes that core out of our hands


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def available_cores() -> int:
    allowed = _allowed_cpus()
    return len(allowed) if allowed else (os.cpu_count() or 1)


def system_busy_seconds() -> float | None:
    """CPU seconds the CPUs this process may run on have spent busy since boot, or None without /proc/stat.

    Only the CPUs of this process's affinity set count (taskset, cpusets, Slurm and container pinning), so
    load on cores training could never use does not take threads away.
    """
    allowed = _allowed_cpus()
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu")]
    except OSError:
        return None
    busy, found = 0, False
    for fields in lines:
        name = fields[0]
        if name == "cpu" or not name[3:].isdigit() or (allowed is not None and int(name[3:]) not in allowed):
            continue
        # user nice system idle iowait irq softirq steal ...: busy = everything but idle and iowait
        ticks = [int(v) for v in fields[1:9]]
        busy += sum(ticks) - ticks[3] - ticks[4]
        found = True
    return busy / os.sysconf("SC_CLK_TCK") if found else None


def load_sample() -> tuple[float, float, float]:
    """(wall clock, the machine's busy CPU seconds, this process's CPU seconds): two give the others' load."""
    return time.monotonic(), system_busy_seconds() or 0.0, time.process_time()


class ThreadPolicy:
    """Sets ``torch``'s intra-op threads for a training loop and adapts them to the machine's load.

    Args:
        threads: a fixed count, or 0 for automatic (the idle cores, re-checked about once a second).
        sample: where load samples come from (default :func:`load_sample`; tests pass their own).

    Use :meth:`start` before the loop, :meth:`after_step` after each iteration (cheap: a clock read,
    and once a second one read of ``/proc/stat``) and :meth:`stop` after it, which restores the
    caller's thread count (a notebook kernel keeps its own setting).
    """

    def __init__(self, threads: int = 0, sample=None):
        if threads < 0:
            raise ValueError(f"threads must be 0 (automatic) or a positive count, got {threads}")
        self.cores = available_cores()
        self.threads = threads or self.cores
        self.adaptive = threads == 0 and self.cores > 1 and system_busy_seconds() is not None
        self._saved: int | None = None
        self._last: tuple[float, float, float] | None = None
        self._sample = sample or load_sample

    def others_busy_cores(self, before, after) -> float:
        """Cores' worth of CPU that other processes used between two samples."""
        wall = after[0] - before[0]
        if wall <= 0:
            return 0.0
        return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / wall

    def choose(self, others: float) -> int:
        """All the cores but those another process keeps busy, and at least one."""
        taken = int(others // 1) + (1 if others % 1 >= BUSY_CORE else 0)
        return max(1, self.cores - taken)

    def start(self) -> int:
        self._saved = torch.get_num_threads()
        if self.adaptive:  # a short look at the load before the first step
            before = self._sample()
            time.sleep(0.2)
            self._last = self._sample()
            self.threads = self.choose(self.others_busy_cores(before, self._last))
        torch.set_num_threads(self.threads)
        return self.threads

    def after_step(self) -> int:
        if not self.adaptive:
            return self.threads
        now = time.monotonic()
        if self._last is None or now - self._last[0] < CHECK_EVERY_S:
            return self.threads
        sample = self._sample()
        wanted = self.choose(self.others_busy_cores(self._last, sample))
        self._last = sample
        if wanted != self.threads:
            self.threads = wanted
            torch.set_num_threads(wanted)
        return self.threads

    def stop(self) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved)
            self._saved = None
