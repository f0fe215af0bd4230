"""GPU speed of the paper preset with each fast-path option (run with the device tool, under 5 minutes).

Prints FactorVAE iterations per second (batch 64, full dSprites on the GPU) for fp32, bf16 autocast,
torch.compile and torch.compile with CUDA graphs (mode "reduce-overhead"), alone and combined. A
variant that fails to build or run is reported, not fatal. Target: >= 1,000 it/s on an H200.

    python benchmarks/bench_gpu.py [--iterations 300]
Then check the fastest variant's curves against fp32:
    python benchmarks/bench_fastpath.py --device cuda --iterations 5000 --fast <the printed fast spec>
Both in one device call: benchmarks/device_check.sh.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import traceback

import torch

# name -> the fast-path spec bench_fastpath.py takes (tokens bf16, cl, compile[=mode])
VARIANTS = {
    "fp32": "",
    "bf16": "bf16",
    "fp32+cudagraphs": "compile=reduce-overhead",
    "bf16+cudagraphs": "bf16+compile=reduce-overhead",
    "fp32+compile": "compile=default",
    "bf16+compile": "bf16+compile=default",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--budget-s", type=float, default=240, help="variants not started by then are skipped")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: run this with the device tool")
    from bench_fastpath import fast_options

    from fvae_lib.data import DSprites
    from fvae_lib.config import TrainConfig
    from fvae_lib.train import Trainer

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    data = DSprites(source="replica", progress=False)
    rates = {}
    start = time.perf_counter()
    for name in args.variants.split(","):
        if time.perf_counter() - start > args.budget_s:
            print(f"{name:<18} skipped: the {args.budget_s:.0f} s budget is spent")
            continue
        try:
            cfg = TrainConfig.from_preset("paper", device="cuda", **fast_options(VARIANTS[name]))
            trainer = Trainer(cfg, tempfile.mkdtemp(), data=data, progress=False)
            t0 = time.perf_counter()
            for _ in range(30):  # warm-up and compilation
                trainer.train_step()
            torch.cuda.synchronize()
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(args.iterations):
                trainer.train_step()
            torch.cuda.synchronize()
            rate = args.iterations / (time.perf_counter() - t0)
            rates[name] = rate
            print(f"{name:<18}{rate:9.1f} it/s   ({1e3 / rate:.2f} ms/it; warm-up {warm:.1f} s; "
                  f"3e5 iterations in {3e5 / rate / 60:.1f} min)", flush=True)
        except Exception as err:  # noqa: BLE001 -- report and go on to the next variant
            print(f"{name:<18} failed: {type(err).__name__}: {err}".splitlines()[0])
            traceback.print_exc(limit=2)
    if rates:
        best = max(rates, key=rates.get)
        print(f"fastest: {best} at {rates[best]:.0f} it/s, {rates[best] / rates.get('fp32', float('nan')):.2f}x fp32")
        print(f"fast spec: {VARIANTS[best] or 'fp32'}")  # what bench_fastpath.py --fast takes


if __name__ == "__main__":
    main()
