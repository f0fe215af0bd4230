"""Where an iteration's time goes: torch.profiler over the plain loop (bench_train.PeerLoop) and the library's
step, side by side, per operator (self CPU time per iteration), with the minor page faults of each loop.

    python benchmarks/profile_train.py [--iterations 30] [--variant fp32] [--rows 25]

Cap the kernels to see an AVX2-only CPU on an AVX-512 one (bench_train.py says how).
"""
from __future__ import annotations

import argparse
import resource
import tempfile
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bench_train import PeerLoop, machine_report, trainer_for


def per_op(step, iterations: int) -> tuple[dict, float]:
    """{operator: self CPU ms per iteration}, and minor page faults per iteration, over ``iterations`` steps."""
    for _ in range(5):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / iterations
    table = defaultdict(float)
    for event in prof.key_averages():
        table[event.key] += event.self_cpu_time_total / 1e3 / iterations
    return table, faults


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    from fvae_lib.data import DSprites

    torch.manual_seed(0)
    data = DSprites(source="replica", progress=False)
    print(machine_report(), f"; {torch.get_num_threads()} threads")
    images = data.images(torch.randperm(len(data))[:4000]).to(torch.uint8)
    tmp = tempfile.TemporaryDirectory()
    loops = {"plain": PeerLoop(images).step, args.variant: trainer_for(args.variant, data, f"{tmp.name}/lib").train_step}
    tables, faults = {}, {}
    for name, step in loops.items():
        tables[name], faults[name] = per_op(step, args.iterations)
    names = list(loops)
    ops = sorted(set().union(*tables.values()), key=lambda k: -max(t.get(k, 0.0) for t in tables.values()))
    print(f"{'operator (self CPU ms per iteration)':<48}" + "".join(f"{n:>12}" for n in names))
    for op in ops[: args.rows]:
        print(f"{op[:47]:<48}" + "".join(f"{tables[n].get(op, 0.0):12.2f}" for n in names))
    print(f"{'total':<48}" + "".join(f"{sum(tables[n].values()):12.2f}" for n in names))
    print(f"{'minor page faults per iteration':<48}" + "".join(f"{faults[n]:12.0f}" for n in names))


if __name__ == "__main__":
    main()
