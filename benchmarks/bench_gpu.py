"""GPU speed of the paper preset with each fast-path option (run with the device tool, under 5 minutes).

Prints FactorVAE iterations per second (batch 64, full dSprites on the GPU) for fp32, bf16 autocast,
torch.compile and torch.compile with CUDA graphs (mode "reduce-overhead"), alone and combined. A
variant that fails to build or run is reported, not fatal. Target: >= 1,000 it/s on an H200.

    python benchmarks/bench_gpu.py [--iterations 300]
Then check the fastest variant's curves against fp32:
    python benchmarks/bench_fastpath.py --device cuda --iterations 5000 --fast bf16+compile=reduce-overhead
"""
from __future__ import annotations

import argparse
import tempfile
import time
import traceback

import torch

VARIANTS = {
    "fp32": dict(precision="fp32"),
    "bf16": dict(precision="bf16"),
    "fp32+compile": dict(precision="fp32", compile="default"),
    "fp32+cudagraphs": dict(precision="fp32", compile="reduce-overhead"),
    "bf16+compile": dict(precision="bf16", compile="default"),
    "bf16+cudagraphs": dict(precision="bf16", compile="reduce-overhead"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: run this with the device tool")
    from fvae_lib.data import DSprites
    from fvae_lib.train import TrainConfig, Trainer

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    data = DSprites(source="replica", progress=False)
    for name in args.variants.split(","):
        try:
            cfg = TrainConfig.from_preset("paper", device="cuda", channels_last=False, **VARIANTS[name])
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
            print(f"{name:<18}{rate:9.1f} it/s   ({1e3 / rate:.2f} ms/it; warm-up {warm:.1f} s; "
                  f"3e5 iterations in {3e5 / rate / 60:.1f} min)", flush=True)
        except Exception as err:  # noqa: BLE001 -- report and go on to the next variant
            print(f"{name:<18} failed: {type(err).__name__}: {err}".splitlines()[0])
            traceback.print_exc(limit=2)


if __name__ == "__main__":
    main()
