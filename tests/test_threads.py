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
    policy = ThreadPolicy(0, sample=load)
    policy.cores, policy.threads, policy.adaptive = cores, cores, True
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
