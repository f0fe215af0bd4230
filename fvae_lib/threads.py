"""CPU threads for training on a machine that other programs share.

A learner trains beside a browser, other kernels and a metric job. PyTorch's CPU kernels split each
operation across all cores with OpenMP and wait for every thread at the end of it; when another process
holds one of the cores, every operation waits for the thread that lost its core (``benchmarks/README.md``,
the co-tenant benchmark).

:class:`ThreadPolicy` sets the training threads in three steps:

1. **The cores this process may use**: its CPU affinity (taskset, cpusets, Slurm), capped by the
   container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``: Kubernetes, Binder,
   ``docker --cpus``), which affinity does not show.
2. **An explicit setting wins**: a ``threads=N`` in the config, an ``OMP_NUM_THREADS`` (or
   ``MKL_NUM_THREADS``) in the environment, or a ``torch.set_num_threads`` call made after this module
   was imported is a ceiling the policy never goes above (a call made before importing fvae_lib cannot be
   told from PyTorch's own default).
3. **Adapting within that** (automatic mode): the cores another process keeps busy are left to it, read
   from load, never from timing. Under a quota the load is the container's own CPU use (its cgroup's
   counter), since ``/proc/stat`` there may be the whole host's; elsewhere it is ``/proc/stat`` over
   the allowed CPUs. Both less this process's CPU time. A band around the threshold (hysteresis) keeps a
   co-tenant near half a core from switching the count back and forth.

Changing the thread count can change the last bits of fp32 sums on some CPUs; pin ``threads`` to a number
where a run must be reproducible bit for bit on a shared machine.

Every reading takes a ``root`` (the filesystem root, ``/``), so tests give it a made-up ``/proc`` and
``/sys/fs/cgroup``.
"""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from pathlib import Path

import torch

CHECK_EVERY_S = 1.0  # how often the load is looked at (one read of /proc/stat or of the cgroup's counter)
BUSY_CORE = 0.5  # another process using at least this share of a core takes that core out of our hands...
HYSTERESIS = 0.15  # ...once it passes BUSY_CORE + this, and gives it back once below BUSY_CORE - this
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_THREADS_AT_IMPORT = torch.get_num_threads()  # a later change to it is the caller's explicit choice


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cgroup_folders(root: Path) -> list[Path]:
    """This process's cgroup folders, its own first then its parents: v2 (unified) and v1 (cpu, cpuacct)."""
    text = _read(root / "proc" / "self" / "cgroup") or ""
    folders = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, rel = parts[1].split(","), parts[2].strip().lstrip("/")
        if parts[1] == "":  # v2
            bases = [root / "sys" / "fs" / "cgroup"]
        elif "cpu" in controllers or "cpuacct" in controllers:  # v1, mounted as cpu,cpuacct or separately
            bases = [root / "sys" / "fs" / "cgroup" / name for name in (parts[1], "cpu,cpuacct", "cpu", "cpuacct")]
        else:
            continue
        for base in bases:
            path = base / rel
            while True:  # the process's own folder, then each parent up to the mount: the tightest quota counts
                folders.append(path)
                if path == base:
                    break
                path = path.parent
    return list(dict.fromkeys(folders))


def cpu_quota(root: str | os.PathLike = "/") -> float | None:
    """Cores' worth of CPU time this process's container may use (``cpu.max``, ``cpu.cfs_quota_us``), None if unlimited."""
    quotas = []
    for folder in _cgroup_folders(Path(root)):
        text = _read(folder / "cpu.max")
        if text:  # v2: "max 100000" or "200000 100000"
            fields = text.split()
            if fields and fields[0] != "max":
                quotas.append(int(fields[0]) / int(fields[1] if len(fields) > 1 else 100_000))
            continue
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota and period and int(quota) > 0:  # v1: -1 is unlimited
            quotas.append(int(quota) / int(period))
    return min(quotas) if quotas else None


def cgroup_cpu_seconds(root: str | os.PathLike = "/") -> float | None:
    """CPU seconds used by every process of this process's cgroup (v2 ``cpu.stat`` usage_usec, v1 ``cpuacct.usage``)."""
    for folder in _cgroup_folders(Path(root)):
        text = _read(folder / "cpu.stat")
        if text:
            for line in text.splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        text = _read(folder / "cpuacct.usage")
        if text and text.strip().isdigit():
            return int(text) / 1e9
    return None


def available_cores(root: str | os.PathLike = "/") -> int:
    """The cores this process may use: its affinity set, capped by the container's CPU quota (rounded down, at least 1)."""
    return _cores_and_limit(root)[0]


def _cores_and_limit(root) -> tuple[int, str]:
    allowed = _allowed_cpus()
    cores = len(allowed) if allowed else (os.cpu_count() or 1)
    quota = cpu_quota(root)  # rounded down: 2 threads on a 1.5-CPU quota are throttled in every window
    if quota is not None and max(1, math.floor(quota + 1e-9)) < cores:
        return max(1, math.floor(quota + 1e-9)), "cpu quota"
    return cores, "cores"


def explicit_threads(environ=None) -> tuple[int, str] | None:
    """(count, where it was set) when the caller chose a thread count for PyTorch: the environment or torch."""
    environ = os.environ if environ is None else environ
    for name in THREAD_ENV:
        value = environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value), name
    if torch.get_num_threads() != _THREADS_AT_IMPORT:
        return torch.get_num_threads(), "torch.set_num_threads"
    return None


def system_busy_seconds(root: str | os.PathLike = "/") -> float | None:
    """CPU seconds the CPUs this process may run on have spent busy since boot, or None without /proc/stat.

    Only the CPUs of this process's affinity set count (taskset, cpusets, Slurm and container pinning), so
    load on cores training could never use does not take threads away.
    """
    allowed = _allowed_cpus()
    text = _read(Path(root) / "proc" / "stat")
    if text is None:
        return None
    busy, found = 0, False
    for fields in (line.split() for line in text.splitlines() if line.startswith("cpu")):
        name = fields[0]
        if name == "cpu" or not name[3:].isdigit() or (allowed is not None and int(name[3:]) not in allowed):
            continue
        # user nice system idle iowait irq softirq steal ...: busy = everything but idle and iowait
        ticks = [int(v) for v in fields[1:9]]
        busy += sum(ticks) - ticks[3] - ticks[4]
        found = True
    return busy / os.sysconf("SC_CLK_TCK") if found else None


def load_source(root: str | os.PathLike = "/"):
    """(a function giving the busy CPU seconds that count, its name): the cgroup's under a quota, else /proc/stat's."""
    if cpu_quota(root) is not None and cgroup_cpu_seconds(root) is not None:
        return (lambda: cgroup_cpu_seconds(root)), "cgroup"
    if system_busy_seconds(root) is not None:
        return (lambda: system_busy_seconds(root)), "/proc/stat"
    return None, "none"


def _sample_with(busy, clock) -> tuple[float, float, float]:
    return clock(), (busy() if busy else None) or 0.0, time.process_time()


def load_sample(root: str | os.PathLike = "/") -> tuple[float, float, float]:
    """(wall clock, the busy CPU seconds that count, this process's CPU seconds): two give the others' load."""
    return _sample_with(load_source(root)[0], time.monotonic)


class ThreadPolicy:
    """Sets ``torch``'s intra-op threads for a training loop and adapts them to the machine's load.

    Args:
        threads: a fixed count, or 0 for automatic: the cores this process may use (affinity and CPU quota),
            at most an explicit ``OMP_NUM_THREADS`` or ``torch.set_num_threads``, less those other processes
            keep busy (re-checked about once a second).
        sample: where load samples come from, ``() -> (wall s, busy CPU s, this process's CPU s)``
            (default: from :func:`load_source`; tests pass their own).
        root: the filesystem root the readings come from (tests pass a made-up one).
        environ: the environment to read ``OMP_NUM_THREADS`` from (default ``os.environ``).

    Use :meth:`start` before the loop, :meth:`after_step` after each iteration (cheap: a clock read,
    and once a second one read of the load) and :meth:`stop` after it, which restores the caller's thread
    count (a notebook kernel keeps its own setting). :meth:`window_threads` says which counts the steps since
    its last call used.
    """

    def __init__(self, threads: int = 0, sample=None, root: str | os.PathLike = "/", environ=None, clock=None):
        if threads < 0:
            raise ValueError(f"threads must be 0 (automatic) or a positive count, got {threads}")
        self.cores, limit = _cores_and_limit(root)
        explicit = None if threads else explicit_threads(environ)
        if threads:
            self.ceiling, self.reason = threads, "threads setting"
        elif explicit:
            self.ceiling, self.reason = min(explicit[0], self.cores), explicit[1]
        else:
            self.ceiling, self.reason = self.cores, limit
        busy, self.load = (None, "none") if threads else load_source(root)
        self.threads = self.ceiling
        self.adaptive = threads == 0 and self.ceiling > 1 and (sample is not None or busy is not None)
        self._saved: int | None = None
        self._last: tuple[float, float, float] | None = None
        self._clock = clock or ((lambda: sample()[0]) if sample else time.monotonic)
        self._sample = sample or (lambda: _sample_with(busy, self._clock))
        self._steps: Counter = Counter()

    def others_busy_cores(self, before, after) -> float:
        """Cores' worth of CPU that other processes used between two samples."""
        wall = after[0] - before[0]
        if wall <= 0:
            return 0.0
        return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / wall

    def choose(self, others: float, current: int | None = None) -> int:
        """The cores but those another process keeps busy, at least one and at most the ceiling.

        A core counts as taken once another process uses ``BUSY_CORE + HYSTERESIS`` of it and as free once
        below ``BUSY_CORE - HYSTERESIS``; in between, ``current`` (the count in use) is kept.
        """
        def threads_if_taken_from(share: float) -> int:
            taken = int(others // 1) + (1 if others % 1 >= share else 0)
            return max(1, min(self.ceiling, self.cores - taken))

        fewest, most = threads_if_taken_from(BUSY_CORE - HYSTERESIS), threads_if_taken_from(BUSY_CORE + HYSTERESIS)
        if current is None:
            return threads_if_taken_from(BUSY_CORE)
        return min(max(current, fewest), most)

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
        self._steps[self.threads] += 1
        if not self.adaptive:
            return self.threads
        if self._last is None or self._clock() - self._last[0] < CHECK_EVERY_S:
            return self.threads
        sample = self._sample()
        wanted = self.choose(self.others_busy_cores(self._last, sample), self.threads)
        self._last = sample
        if wanted != self.threads:
            self.threads = wanted
            torch.set_num_threads(wanted)
        return self.threads

    def window_threads(self) -> dict:
        """{"threads": the count most steps since the last call used, "threads_steps": {count: steps} if it changed}."""
        steps, self._steps = self._steps, Counter()
        if not steps:
            return {"threads": self.threads}
        row = {"threads": steps.most_common(1)[0][0]}
        if len(steps) > 1:
            row["threads_steps"] = {str(k): v for k, v in sorted(steps.items())}
        return row

    def stop(self) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved)
            self._saved = None
