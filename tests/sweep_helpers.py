"""What the sweep-engine tests share (test_engines, test_engine_submitit): a short sweep spec, waiting for a
condition, the pid training a run, and a run's history checked clean."""
import json
import time
from pathlib import Path

from fvae_lib.runs import read_history
from fvae_lib.storage import process_alive

# long enough to be caught mid-run: the tests act on a run's first logged step (10) or first checkpoint (20), so
# 80 or more steps are left to go, seconds of training however fast the machine; short enough for a test
ITERATIONS = 100
SPEC = {"preset": "smoke", "iterations": ITERATIONS, "settings": "smoke", "trajectory_every": -1, "metrics": ["factor_vae"]}


def wait_for(condition, what: str, timeout_s: float = 300):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def training_pid(run: Path) -> int | None:
    """The pid holding the run folder once it has logged a step (training under way), else None."""
    try:
        holder = json.loads((run / ".lock").read_text())
    except (OSError, ValueError):
        return None
    return holder["pid"] if read_history(run) and process_alive(holder["pid"]) else None


def assert_clean_history(run: Path, iterations: int):
    steps = [r["step"] for r in read_history(run)]
    assert steps == sorted(set(steps)) and steps[-1] == iterations, steps  # strictly increasing, to the end
