"""Does the CPU fast path train like fp32?

Trains the paper's FactorVAE (batch 64, γ 35, full dSprites) for N iterations with fp32 (seeds 0, 1, 2)
and with the fast path, bf16 autocast on the VAE + channels_last (seeds 0, 1). Training curves of
different seeds differ (the adversarial TC term makes them chaotic), so the question is whether
fast-vs-fp32 curves differ more than fp32-vs-fp32 ones: the benchmark prints the mean absolute gap of
each term over the second half of training for both kinds of pair, and writes the curves to
benchmarks/out/fastpath_curves.png. Histories are cached in benchmarks/out/ (delete to rerun).

    python benchmarks/bench_fastpath.py [--iterations 2000] [--device cpu] [--fast bf16+cl]
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
RUNS = {"fp32 s0": 0, "fp32 s1": 1, "fp32 s2": 2, "fast s0": 0, "fast s1": 1}  # name -> seed
KEYS = ["recon", "kl", "tc", "d_loss"]


def fast_options(spec: str) -> dict:
    """'bf16+cl' -> precision bf16, channels_last; '+compile=reduce-overhead' adds torch.compile."""
    opts = dict(precision="fp32", channels_last=False, compile="off")
    for token in filter(None, spec.split("+")):
        if token == "fp32":
            pass
        elif token == "bf16":
            opts["precision"] = "bf16"
        elif token == "cl":
            opts["channels_last"] = True
        elif token.startswith("compile"):
            opts["compile"] = token.partition("=")[2] or "default"
        else:
            raise SystemExit(f"unknown fast-path token {token!r}")
    return opts


def history(name, iterations, data, device, fast):
    from fvae_lib.config import TrainConfig
    from fvae_lib.train import Trainer

    tag = "fp32" if name.startswith("fp32") else fast
    cache = OUT / f"fastpath_{device}_{tag}_s{RUNS[name]}_{iterations}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    opts = fast_options("" if name.startswith("fp32") else fast)
    cfg = TrainConfig.from_preset("paper", device=device, iterations=iterations, log_every=50, snapshot_every=0,
                                  checkpoint_every=iterations * 50, seed=RUNS[name], **opts)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = Trainer(cfg, tmp, data=data, progress=False).run()
        result = {"rows": rows, "it_per_s": iterations / (time.perf_counter() - t0)}
    OUT.mkdir(exist_ok=True)
    cache.write_text(json.dumps(result))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fast", default="bf16+cl", help="the fast path: tokens bf16, cl, compile[=mode] joined by +")
    args = parser.parse_args()
    from fvae_lib.data import DSprites
    from fvae_lib.display import new_figure
    from fvae_lib.plots import save_figure

    data = DSprites(source="replica", progress=False)
    hist = {}
    for name in RUNS:
        hist[name] = history(name, args.iterations, data, args.device, args.fast)
        last = hist[name]["rows"][-1]
        print(f"{name}: {hist[name]['it_per_s']:.2f} it/s, final recon {last['recon']:.1f}, kl {last['kl']:.2f}, "
              f"tc {last['tc']:.3f}, d_loss {last['d_loss']:.3f}", flush=True)

    half = len(hist["fp32 s0"]["rows"]) // 2

    def gap(a, b, k):
        return float(np.mean([abs(x[k] - y[k]) for x, y in zip(hist[a]["rows"][half:], hist[b]["rows"][half:])]))

    fp32 = [n for n in RUNS if n.startswith("fp32")]
    fast = [n for n in RUNS if n.startswith("fast")]
    noise_pairs = list(itertools.combinations(fp32, 2))
    cross_pairs = list(itertools.product(fast, fp32))
    print(f"\nmean |gap| over iterations {hist['fp32 s0']['rows'][half]['step']}..{args.iterations}, averaged over pairs:")
    print(f"{'term':<8}{'fp32 vs fp32 (noise)':>22}{'fast vs fp32':>15}{'ratio':>8}")
    for k in KEYS:
        noise = np.mean([gap(a, b, k) for a, b in noise_pairs])
        cross = np.mean([gap(a, b, k) for a, b in cross_pairs])
        print(f"{k:<8}{noise:>22.4f}{cross:>15.4f}{cross / noise:>8.2f}")

    fig = new_figure(figsize=(13, 3))
    axes = fig.subplots(1, len(KEYS))
    for ax, k in zip(axes, KEYS):
        for name, h in hist.items():
            ax.plot([r["step"] for r in h["rows"]], [r[k] for r in h["rows"]], label=name, lw=1,
                    color="C0" if name.startswith("fp32") else "C3", alpha=0.8)
        ax.set_title(k)
        if k == "recon":
            ax.set_ylim(0, 800)
    axes[0].legend(fontsize=7)
    print("figure:", save_figure(fig, OUT / f"fastpath_curves_{args.device}.png"))


if __name__ == "__main__":
    main()
