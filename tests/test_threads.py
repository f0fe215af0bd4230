"""The thread policy: the cores other processes leave free, from load (never from timing)."""
import os
import subprocess
import sys
import time

import pytest
import torch

from fvae_lib.threads import ThreadPolicy, available_cores, load_sample, system_busy_seconds


class FakeLoad:
    """Load samples on a made-up clock: `others` cores busy elsewhere, `ours` cores used by this process."""

    def __init__(self):
        self.t = self.busy = self.ours = 0.0
        self.others, self.ours_rate = 0.0, 1.0

    def advance(self, seconds):
        self.t += seconds
        self.busy += (self.others + self.ours_rate) * seconds
        self.ours += self.ours_rate * seconds

    def __call__(self):
        return self.t, self.busy, self.ours


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def policy_on(load, cores=4):
    policy = ThreadPolicy(0, sample=load, environ={})
    policy.cores = policy.threads = policy.ceiling = cores
    policy.adaptive = True
    return policy


def test_choose_leaves_out_each_core_another_process_keeps_busy():
    policy = policy_on(FakeLoad(), cores=4)
    assert [policy.choose(x) for x in (0.0, 0.3, 0.6, 1.0, 1.4, 1.7, 3.2, 9.0)] == [4, 4, 3, 3, 3, 2, 1, 1]


def test_the_others_load_excludes_this_process():
    load = FakeLoad()
    policy = policy_on(load)
    before = load()
    load.others, load.ours_rate = 0.75, 2.0
    load.advance(2.0)
    assert policy.others_busy_cores(before, load()) == pytest.approx(0.75)


def test_training_threads_follow_the_load_and_the_callers_setting_comes_back(restore_threads, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    load = FakeLoad()
    torch.set_num_threads(1)
    policy = policy_on(load, cores=2)
    assert policy.start() == 2 and torch.get_num_threads() == 2  # idle machine: every core
    load.advance(0.5)
    assert policy.after_step() == 2  # looked at no more than once a second
    load.others = 1.0  # another process takes a core
    load.advance(1.0)
    assert policy.after_step() == 1 and torch.get_num_threads() == 1
    load.advance(1.0)
    assert policy.after_step() == 1
    load.others = 0.1  # and lets it go
    load.advance(1.0)
    assert policy.after_step() == 2 and torch.get_num_threads() == 2
    policy.stop()
    assert torch.get_num_threads() == 1


def test_a_pinned_count_never_changes(restore_threads):
    load = FakeLoad()
    policy = ThreadPolicy(1, sample=load)
    assert not policy.adaptive and policy.start() == 1
    load.others = 5.0
    load.advance(3.0)
    assert policy.after_step() == 1 and torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads must be 0"):
        ThreadPolicy(-1)


@pytest.mark.skipif(system_busy_seconds() is None or available_cores() < 2, reason="needs /proc/stat and 2 cores")
def test_a_real_busy_process_is_seen_as_another_process_load():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start
        before = load_sample()
        time.sleep(1.5)
        others = ThreadPolicy(0).others_busy_cores(before, load_sample())
    finally:
        busy.kill()
        busy.wait()
    # the loop takes a whole core; anything else running only adds to it
    assert others > 0.7, others


@pytest.mark.skipif(system_busy_seconds() is None, reason="needs /proc/stat")
def test_only_the_cpus_this_process_may_use_count(monkeypatch):
    import fvae_lib.threads as threads

    with open("/proc/stat") as f:
        cpu0 = next(line.split() for line in f if line.startswith("cpu0 "))
    ticks = [int(v) for v in cpu0[1:9]]
    monkeypatch.setattr(threads, "_allowed_cpus", lambda: {0})
    only_cpu0 = system_busy_seconds()
    # cpu0's busy ticks (read just before; the counter only grows, by at most a tick or two meanwhile)
    assert 0 <= only_cpu0 - (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK") < 0.5
    monkeypatch.setattr(threads, "_allowed_cpus", lambda: {10_000})  # no such CPU: nothing to read
    assert system_busy_seconds() is None


# -- the ceiling: an explicit setting, the container's quota -------------------------------------------------

def fake_root(tmp_path, cgroup: str, files: dict[str, str]):
    """A made-up filesystem root: /proc/self/cgroup, and files under /sys/fs/cgroup."""
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text(cgroup)
    for rel, text in files.items():
        path = tmp_path / "sys" / "fs" / "cgroup" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture
def host_with_64_cpus(monkeypatch):
    import fvae_lib.threads as threads

    monkeypatch.setattr(threads, "_allowed_cpus", lambda: set(range(64)))
    monkeypatch.setattr(threads, "_THREADS_AT_IMPORT", torch.get_num_threads())  # whatever earlier tests left


def test_an_explicit_omp_num_threads_is_a_ceiling(restore_threads, monkeypatch, tmp_path):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    root = fake_root(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    policy = ThreadPolicy(0, sample=FakeLoad(), root=root, environ={"OMP_NUM_THREADS": "1"})
    assert policy.ceiling == 1 and policy.reason == "OMP_NUM_THREADS"
    assert policy.start() == 1 and not policy.adaptive
    policy.stop()
    assert ThreadPolicy(0, root=root, environ={"MKL_NUM_THREADS": "1"}).ceiling == 1


def test_torch_set_num_threads_after_import_is_a_ceiling(restore_threads, monkeypatch, host_with_64_cpus, tmp_path):
    import fvae_lib.threads as threads

    root = fake_root(tmp_path, "0::/\n", {})
    monkeypatch.setattr(threads, "_THREADS_AT_IMPORT", 4)
    torch.set_num_threads(3)
    policy = ThreadPolicy(0, sample=FakeLoad(), root=root, environ={})
    assert (policy.ceiling, policy.reason) == (3, "torch.set_num_threads")
    torch.set_num_threads(4)  # as it was at import: nothing explicit, every core
    assert ThreadPolicy(0, sample=FakeLoad(), root=root, environ={}).ceiling == 64
    # a pinned count in the config wins over both
    torch.set_num_threads(3)
    assert ThreadPolicy(5, root=root, environ={"OMP_NUM_THREADS": "1"}).threads == 5


@pytest.mark.parametrize("cgroup, files, cores", [
    ("0::/\n", {"cpu.max": "200000 100000\n"}, 2),  # docker --cpus=2 (cgroup v2)
    ("0::/\n", {"cpu.max": "150000 100000\n"}, 1),  # 1.5 CPUs: rounded down (2 threads would be throttled)
    ("0::/\n", {"cpu.max": "50000 100000\n"}, 1),  # half a CPU: still one thread
    ("0::/\n", {"cpu.max": "max 100000\n"}, 64),  # no quota
    ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/cpu.max": "100000 100000\n", "kubepods/pod1/c1/cpu.max": "max 100000\n"}, 1),
    ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "400000\n",
                                     "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"}, 4),  # cgroup v1
    ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1\n",
                                     "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"}, 64),  # v1, unlimited
    ("", {}, 64),  # no cgroup at all (not Linux, or hidden)
])
def test_the_container_cpu_quota_caps_the_cores(tmp_path, host_with_64_cpus, cgroup, files, cores):
    root = fake_root(tmp_path, cgroup, files)
    assert available_cores(root) == cores
    policy = ThreadPolicy(0, sample=FakeLoad(), root=root, environ={})
    assert policy.ceiling == cores and policy.reason == ("cpu quota" if cores < 64 else "cores")


def test_under_a_quota_the_load_is_the_containers_own_not_the_hosts(tmp_path, host_with_64_cpus):
    from fvae_lib.threads import cgroup_cpu_seconds, load_source

    host = "cpu  100 0 100 100 0 0 0 0\n" + "".join(f"cpu{i} 9999 0 9999 1 0 0 0 0\n" for i in range(64))
    root = fake_root(tmp_path, "0::/\n", {"cpu.max": "200000 100000\n", "cpu.stat": "usage_usec 7500000\nuser_usec 1\n"})
    (root / "proc" / "stat").write_text(host)
    busy, name = load_source(root)
    assert name == "cgroup" and busy() == cgroup_cpu_seconds(root) == pytest.approx(7.5)
    assert ThreadPolicy(0, root=root, environ={}).load == "cgroup"
    # without a quota, the CPUs' own counters (of the CPUs this process may use)
    (root / "sys" / "fs" / "cgroup" / "cpu.max").write_text("max 100000\n")
    busy, name = load_source(root)
    assert name == "/proc/stat" and busy() == pytest.approx(64 * 19998 / os.sysconf("SC_CLK_TCK"))
    # v1's counter is in nanoseconds
    v1 = fake_root(tmp_path / "v1", "3:cpuacct,cpu:/x\n", {"cpuacct,cpu/x/cpuacct.usage": "2500000000\n",
                                                           "cpuacct,cpu/x/cpu.cfs_quota_us": "100000\n",
                                                           "cpuacct,cpu/x/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_seconds(v1) == pytest.approx(2.5) and available_cores(v1) == 1


def test_a_co_tenant_near_half_a_core_does_not_flip_the_count(restore_threads, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    load = FakeLoad()
    policy = policy_on(load, cores=4)
    assert policy.start() == 4
    seen = []
    for others in (0.45, 0.55, 0.45, 0.6, 0.4, 0.55, 0.45, 0.5):  # noise around BUSY_CORE
        load.others = others
        load.advance(1.0)
        seen.append(policy.after_step())
    assert seen == [4] * 8
    load.others = 0.7  # clearly a core's worth: give it up...
    load.advance(1.0)
    assert policy.after_step() == 3
    for others in (0.55, 0.4, 0.45, 0.6):  # ...and keep it given up in the band
        load.others = others
        load.advance(1.0)
        assert policy.after_step() == 3
    load.others = 0.2  # clearly free again
    load.advance(1.0)
    assert policy.after_step() == 4
    policy.stop()


def test_each_window_says_which_thread_counts_its_steps_used(restore_threads, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    load = FakeLoad()
    policy = policy_on(load, cores=2)
    policy.start()
    for _ in range(3):
        policy.after_step()
    assert policy.window_threads() == {"threads": 2}
    load.others = 1.0
    load.advance(1.0)
    for _ in range(5):  # the first step still ran on 2; the count changes after it
        policy.after_step()
    assert policy.window_threads() == {"threads": 1, "threads_steps": {"1": 4, "2": 1}}
    policy.stop()
