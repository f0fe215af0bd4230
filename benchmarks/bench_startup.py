"""Start-up time and peak memory of `python -m fvae_lib train` on the full dSprites grid (CPU).

Start-up: from launching the process to the first training iteration, with the dataset cache present.
Peak memory: the training process's peak resident set after ``--iterations`` steps.
Both for fp32 and for the CPU fast path (bf16 autocast + channels_last).

    python benchmarks/bench_startup.py [--iterations 30]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
import fvae_lib.train as train

first = []
original = train.Trainer.train_step

def timed_step(self):
    if not first:
        first.append(time.time())
    return original(self)

train.Trainer.train_step = timed_step
from fvae_lib.__main__ import main
rc = main(sys.argv[2:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
with open(sys.argv[1], "w") as f:
    json.dump({"first_step": first[0], "peak_gib": peak, "rc": rc}, f)
"""


def measure(extra: list[str], iterations: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = f"{tmp}/report.json"
        args = ["train", "--preset", "cpu", "--iterations", str(iterations), "--out", f"{tmp}/run", "--no-progress", *extra]
        t0 = time.time()
        subprocess.run([sys.executable, "-c", CHILD, report, *args], check=True, stdout=subprocess.DEVNULL)
        out = json.load(open(report))
    return {"startup_s": out["first_step"] - t0, "peak_gib": out["peak_gib"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    from fvae_lib.data import DSprites

    DSprites(source="replica", progress=False)  # make sure the cache exists: start-up is measured with it present
    print(f"{'path':<28}{'start-up s':>11}{'peak GiB':>10}   (targets: <= 3 s, <= 2 GB)")
    for name, extra in (("fp32", ["--precision", "fp32"]), ("fast (bf16 + channels_last)", ["--precision", "bf16", "--channels-last"])):
        runs = [measure(extra, args.iterations) for _ in range(3)]
        best = min(r["startup_s"] for r in runs)
        print(f"{name:<28}{best:11.2f}{max(r['peak_gib'] for r in runs):10.2f}")


if __name__ == "__main__":
    main()
