"""Does the CPU fast path train like fp32?

Trains the paper's FactorVAE (batch 64, γ 35, full dSprites) for N iterations with a baseline (default fp32,
NCHW; seeds 0, 1, 2) and with a faster variant (default the fast path, bf16 autocast on the VAE +
channels_last; seeds 0, 1). Training curves of different seeds differ (the adversarial TC term makes them
chaotic), so the question is whether variant-vs-baseline curves differ more than baseline-vs-baseline ones:
the benchmark prints the mean absolute gap of each term over the second half of training for both kinds of
pair, and writes the curves to benchmarks/out/fastpath_curves_<device>.png. Histories are cached in
benchmarks/out/ by device, variant and seed (delete to rerun).

A variant is tokens joined by +: bf16, cl (channels_last), compile[=mode], and three that undo #21's levers:
concat (the step that runs D once on the concatenation of z.detach() and permute_dims(z′) instead of reusing
D(z) of the VAE step: ``factor_vae_step(..., reuse_d_of_z=False)``), autograd-d (D's backward left to
autograd: ``d_backward_by_hand=False``) and convt (the decoder's last layer trained through
nn.ConvTranspose2d: ``decoder.phase_last_layer = False``). ``cl+concat+convt`` is the fp32 step as it was
before #21's numerics-changing levers (bit for bit); the levers were checked with
``--baseline cl+concat+convt --fast cl`` (and the reuse of D(z) alone with ``--baseline cl+concat --fast cl``).

    python benchmarks/bench_fastpath.py [--iterations 2000] [--device cpu] [--fast bf16+cl] [--baseline fp32] [--seeds 3,2]
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
KEYS = ["recon", "kl", "tc", "d_loss"]


def fast_options(spec: str) -> dict:
    """'bf16+cl' -> precision bf16, channels_last; '+compile=reduce-overhead' adds torch.compile; '+concat' the
    step without the reuse of D(z), '+autograd-d' without D's backward by hand, '+convt' without the phase
    forward of the last deconvolution. Returns TrainConfig fields, "step" (factor_vae_step's options) and
    "phase_last_layer"."""
    opts = dict(precision="fp32", channels_last=False, compile="off", step={}, phase_last_layer=True)
    for token in filter(None, spec.split("+")):
        if token == "fp32":
            pass
        elif token == "bf16":
            opts["precision"] = "bf16"
        elif token == "cl":
            opts["channels_last"] = True
        elif token == "concat":
            opts["step"]["reuse_d_of_z"] = False
        elif token == "autograd-d":
            opts["step"]["d_backward_by_hand"] = False
        elif token == "convt":
            opts["phase_last_layer"] = False
        elif token.startswith("compile"):
            opts["compile"] = token.partition("=")[2] or "default"
        else:
            raise SystemExit(f"unknown fast-path token {token!r}")
    return opts


def history(seed, iterations, data, device, spec):
    from fvae_lib.config import TrainConfig
    from fvae_lib.train import Trainer

    cache = OUT / f"fastpath_{device}_{spec}_s{seed}_{iterations}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    from functools import partial

    from fvae_lib.algorithm import factor_vae_step

    opts = fast_options(spec)
    step_options, phase = opts.pop("step"), opts.pop("phase_last_layer")
    step = partial(factor_vae_step, **step_options) if step_options else None
    cfg = TrainConfig.from_preset("paper", device=device, iterations=iterations, log_every=50, snapshot_every=0,
                                  checkpoint_every=iterations * 50, seed=seed, **opts)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trainer = Trainer(cfg, tmp, data=data, progress=False, step=step)
        trainer.vae.decoder.phase_last_layer = phase
        rows = trainer.run()
        result = {"rows": rows, "it_per_s": iterations / (time.perf_counter() - t0)}
    OUT.mkdir(exist_ok=True)
    cache.write_text(json.dumps(result))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fast", default="bf16+cl", help="the variant: tokens bf16, cl, compile[=mode], concat, autograd-d, convt joined by +")
    parser.add_argument("--baseline", default="fp32", help="what the variant is compared with, in the same tokens")
    parser.add_argument("--seeds", default="3,2", help="how many seeds of the baseline and of the variant (3,2): more "
                        "seeds, a steadier noise estimate; cached runs are reused")
    args = parser.parse_args()
    try:
        n_base, n_fast = (int(n) for n in args.seeds.split(","))
    except ValueError:
        raise SystemExit(f"--seeds takes two counts, baseline and variant, e.g. 5,5; got {args.seeds!r}") from None
    if n_base < 2 or n_fast < 1:
        raise SystemExit("--seeds needs at least 2 baseline seeds (for the noise) and 1 of the variant")
    runs = {**{f"base s{i}": i for i in range(n_base)}, **{f"fast s{i}": i for i in range(n_fast)}}  # name -> seed
    from fvae_lib.data import DSprites
    from fvae_lib.display import new_figure
    from fvae_lib.plots import save_figure

    data = DSprites(source="replica", progress=False)
    hist = {}
    for name, seed in runs.items():
        hist[name] = history(seed, args.iterations, data, args.device, args.fast if name.startswith("fast") else args.baseline)
        last = hist[name]["rows"][-1]
        print(f"{name}: {hist[name]['it_per_s']:.2f} it/s, final recon {last['recon']:.1f}, kl {last['kl']:.2f}, "
              f"tc {last['tc']:.3f}, d_loss {last['d_loss']:.3f}", flush=True)

    half = len(hist["base s0"]["rows"]) // 2

    def gap(a, b, k):
        return float(np.mean([abs(x[k] - y[k]) for x, y in zip(hist[a]["rows"][half:], hist[b]["rows"][half:])]))

    fp32 = [n for n in runs if n.startswith("base")]
    fast = [n for n in runs if n.startswith("fast")]
    noise_pairs = list(itertools.combinations(fp32, 2))
    cross_pairs = list(itertools.product(fast, fp32))
    print(f"\nbase = {args.baseline}, fast = {args.fast}; mean |gap| over iterations "
          f"{hist['base s0']['rows'][half]['step']}..{args.iterations}, averaged over pairs:")
    print(f"{'term':<8}{'base vs base (noise)':>22}{'fast vs base':>15}{'ratio':>8}")
    for k in KEYS:
        noise = np.mean([gap(a, b, k) for a, b in noise_pairs])
        cross = np.mean([gap(a, b, k) for a, b in cross_pairs])
        print(f"{k:<8}{noise:>22.4f}{cross:>15.4f}{cross / noise:>8.2f}")

    fig = new_figure(figsize=(13, 3))
    axes = fig.subplots(1, len(KEYS))
    for ax, k in zip(axes, KEYS):
        for name, h in hist.items():
            ax.plot([r["step"] for r in h["rows"]], [r[k] for r in h["rows"]], label=f"{args.baseline if name.startswith('base') else args.fast} {name.split()[1]}", lw=1,
                    color="C0" if name.startswith("base") else "C3", alpha=0.8)
        ax.set_title(k)
        if k == "recon":
            ax.set_ylim(0, 800)
    axes[0].legend(fontsize=7)
    pair = "" if (args.baseline, args.fast) == ("fp32", "bf16+cl") else f"_{args.baseline}_vs_{args.fast}"
    print("figure:", save_figure(fig, OUT / f"fastpath_curves_{args.device}{pair}.png"))


if __name__ == "__main__":
    main()
