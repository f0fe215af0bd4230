"""Training beside another program: FactorVAE iterations per second on an idle machine and with a busy
process holding one core (the co-tenant), for 1 thread, all cores, and the library's default (threads=0,
which adapts to the load: fvae_lib.threads).

Targets: the default keeps >= 0.5x the idle rate under the co-tenant, and >= 0.95x the best idle rate
when the machine is idle. The rate of a run is its steady state: the mean of its logged windows after the
first (warm-up). The scenarios alternate over rounds, so drifting background noise hits each alike.

    python benchmarks/bench_threads.py [--iterations 120] [--rounds 2] [--preset paper]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import torch

BUSY = "while True: pass"


def busy_process(core: int) -> subprocess.Popen:
    """A pure-Python busy loop pinned to one core (where pinning is possible)."""
    def pin():
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core})
    return subprocess.Popen([sys.executable, "-c", BUSY], preexec_fn=pin)


def steady_rate(data, threads: int, iterations: int, preset: str) -> tuple[float, list[int]]:
    from fvae_lib.config import TrainConfig
    from fvae_lib.train import Trainer

    log_every = max(1, iterations // 6)
    cfg = TrainConfig.from_preset(preset, device="cpu", iterations=iterations, log_every=log_every,
                                  checkpoint_every=log_every * 1000, snapshot_every=0, threads=threads)
    with tempfile.TemporaryDirectory() as folder:
        rows = Trainer(cfg, folder, data=data, progress=False).run()
    windows = rows[1:]
    return sum(r["it_per_s"] for r in windows) / len(windows), [r.get("threads", threads) for r in windows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=120, help="per measurement (the first sixth is warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default="paper", help="network and batch size (paper: the paper's, batch 64)")
    args = parser.parse_args()

    from fvae_lib.data import DSprites
    from fvae_lib.threads import available_cores

    cores = available_cores()
    data = DSprites(source="replica", progress=False)
    policies = {"1 thread": 1, f"{cores} threads": cores, "default (adaptive)": 0}
    rates = {(load, name): [] for load in ("idle", "co-tenant") for name in policies}
    chosen = {}
    print(f"torch {torch.__version__}, {cores} cores, preset {args.preset}, {args.iterations} iterations per measurement")
    steady_rate(data, 0, max(12, args.iterations // 4), args.preset)  # warm-up: caches, allocator
    for r in range(args.rounds):
        for load in ("idle", "co-tenant"):
            busy = busy_process(cores - 1) if load == "co-tenant" else None
            try:
                for name, threads in policies.items():
                    rate, used = steady_rate(data, threads, args.iterations, args.preset)
                    rates[(load, name)].append(rate)
                    chosen.setdefault((load, name), []).extend(used)
                    print(f"  round {r + 1} {load:<10} {name:<20} {rate:6.2f} it/s  threads {sorted(set(used))}", flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()

    best_idle = max(max(rates[("idle", name)]) for name in policies)
    print(f"\n{'threads':<20}{'idle it/s':>10}{'co-tenant it/s':>16}{'idle / best idle':>18}{'co-tenant / best idle':>23}")
    for name in policies:
        idle, loaded = max(rates[("idle", name)]), max(rates[("co-tenant", name)])
        print(f"{name:<20}{idle:10.2f}{loaded:16.2f}{idle / best_idle:18.2f}{loaded / best_idle:23.2f}")
    d_idle, d_loaded = max(rates[("idle", "default (adaptive)")]), max(rates[("co-tenant", "default (adaptive)")])
    print(f"\ndefault: {d_idle / best_idle:.2f}x the best idle rate when idle (target >= 0.95), "
          f"{d_loaded / best_idle:.2f}x under the co-tenant (target >= 0.5)")
    print("threads the default chose: idle", sorted(set(chosen[("idle", "default (adaptive)")])),
          "co-tenant", sorted(set(chosen[("co-tenant", "default (adaptive)")])))


if __name__ == "__main__":
    main()
