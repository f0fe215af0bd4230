"""How a sweep should use the cores: one run with every core as its threads, or one one-thread run per core?

For each model, the total training iterations per second of (a) one run with N threads and (b) N runs of one
thread each at once, each run in its own process as a sweep runs them (N = the usable cores). A run's rate is
its steady state: the mean of its logged windows after the first (warm-up). Scenarios alternate over rounds.
The ratio (b)/(a) is what `fvae_lib.engines.plan_workers` relies on: above 1, one run per core is the default.

    python benchmarks/bench_sweep.py [--iterations 300] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from fvae_lib.config import TrainConfig
from fvae_lib.train import Trainer
model, threads, iterations, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
log_every = max(1, iterations // 6)
cfg = TrainConfig.from_preset("cpu", model=model, device="cpu", iterations=iterations, log_every=log_every,
                              checkpoint_every=log_every * 1000, snapshot_every=0, threads=threads)
rows = Trainer(cfg, folder, progress=False).run()
print(json.dumps(sum(r["it_per_s"] for r in rows[1:]) / len(rows[1:])))
"""


def rates(model: str, runs: int, threads: int, iterations: int) -> list[float]:
    """Steady it/s of ``runs`` simultaneous runs of ``threads`` threads each."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, model, str(threads), str(iterations), str(Path(tmp) / f"r{k}")],
                                  stdout=subprocess.PIPE, text=True) for k in range(runs)]
        return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300, help="per run (the first sixth is warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from fvae_lib.threads import available_cores as usable_cores

    import torch

    cores = usable_cores()
    print(f"torch {torch.__version__}, {cores} usable cores, cpu preset (batch 64, full grid), {args.iterations} iterations per run")
    results = {}
    for model in ("factorvae", "betavae"):
        one, many = [], []
        for _ in range(args.rounds):
            one.append(sum(rates(model, 1, cores, args.iterations)))
            many.append(sum(rates(model, cores, 1, args.iterations)))
        results[model] = (max(one), max(many))
    print(f"\n| model | 1 run x {cores} threads (it/s) | {cores} runs x 1 thread (it/s, total) | ratio |")
    print("|---|---|---|---|")
    for model, (one, many) in results.items():
        print(f"| {model} | {one:.2f} | {many:.2f} | {many / one:.2f} |")


if __name__ == "__main__":
    main()
