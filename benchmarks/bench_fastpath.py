"""Does the CPU fast path (bf16 autocast + channels_last) train like fp32?

Trains the paper's FactorVAE (batch 64, γ 35, full dSprites) for N iterations three times: fp32 with
seeds 0 and 1 (their gap is the run-to-run noise) and the fast path with seed 0. Prints the mean
absolute gap of each curve over the second half of training, fast-vs-fp32 beside fp32-vs-fp32, and
writes the curves to benchmarks/out/fastpath_curves.png.

    python benchmarks/bench_fastpath.py [--iterations 2000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    from fvae_lib.data import DSprites
    from fvae_lib.plots import _figure, save_figure
    from fvae_lib.train import TrainConfig, Trainer

    data = DSprites(source="replica", progress=False)
    runs = {"fp32 seed 0": ("fp32", False, 0), "fp32 seed 1": ("fp32", False, 1), "bf16+cl seed 0": ("bf16", True, 0)}
    hist, speed = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (precision, cl, seed) in runs.items():
            cfg = TrainConfig.from_preset("paper", device="cpu", iterations=args.iterations, log_every=50,
                                          checkpoint_every=args.iterations * 50, seed=seed, precision=precision,
                                          channels_last=cl)
            t0 = time.perf_counter()
            hist[name] = Trainer(cfg, f"{tmp}/{len(hist)}", data=data, progress=False).run()
            speed[name] = args.iterations / (time.perf_counter() - t0)
            print(f"{name}: {speed[name]:.2f} it/s, final recon {hist[name][-1]['recon']:.1f}, kl {hist[name][-1]['kl']:.2f}, "
                  f"tc {hist[name][-1]['tc']:.3f}", flush=True)

    keys = ["recon", "kl", "tc", "d_loss"]
    half = len(hist["fp32 seed 0"]) // 2

    def gap(a, b, k):
        return float(np.mean([abs(x[k] - y[k]) for x, y in zip(hist[a][half:], hist[b][half:])]))

    print(f"\nmean |gap| over iterations {hist['fp32 seed 0'][half]['step']}..{args.iterations}:")
    print(f"{'term':<8}{'fp32 s0 vs s1 (noise)':>24}{'bf16+cl vs fp32 (s0)':>24}")
    for k in keys:
        print(f"{k:<8}{gap('fp32 seed 0', 'fp32 seed 1', k):>24.4f}{gap('bf16+cl seed 0', 'fp32 seed 0', k):>24.4f}")

    fig = _figure(figsize=(12, 3))
    axes = fig.subplots(1, len(keys))
    for ax, k in zip(axes, keys):
        for name, rows in hist.items():
            ax.plot([r["step"] for r in rows], [r[k] for r in rows], label=name, lw=1)
        ax.set_title(k)
    axes[0].legend(fontsize=7)
    print("figure:", save_figure(fig, OUT / "fastpath_curves.png"))


if __name__ == "__main__":
    main()
