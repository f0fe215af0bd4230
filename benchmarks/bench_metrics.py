"""Metric timings on the dSprites replica with a trained encoder, split into encoding and scoring.

Each metric runs with disentanglement_lib's defaults. "encoding" is the time spent inside
``represent`` (the encoder); "scoring" is everything else (sampling factors, unpacking images,
variances, votes, classifiers). Printed, in order:

1. the encoder's rate eager (the plain baseline) and frozen (the library's CPU default), same run;
2. each metric on the fly (``--on-the-fly``, slow: every image the metric asks for is encoded) and
   from an EncodedGrid (the whole dataset encoded once, then looked up; what ``evaluate`` does);
3. Chen's MIG estimator (``mig_sampled``) from a grid of posteriors, at ``--mig-samples`` samples, two seeds;
4. a straightforward per-vote loop of the FactorVAE metric beside the library's vectorised one, with
   the same encoder, to compare their scoring parts.

    python benchmarks/bench_metrics.py [--run runs/demo/factorvae] [--skip dci] [--on-the-fly]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


class Timed:
    """Wraps a function (represent, or a dataset's sample_observations) and adds up the seconds inside it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        return out


def factor_vae_per_vote_loop(data, represent, rng, batch_size=64, num_train=10000, num_eval=5000,
                             num_variance_estimate=10000, prune_threshold=0.05):
    """The textbook loop: one vote at a time (the same definition as fvae_lib.metrics.factor_vae_score)."""
    codes = represent(data.sample_observations(data.sample_factors(num_variance_estimate, rng)))
    var = codes.var(0, ddof=1)
    active = np.sqrt(var) >= prune_threshold
    K = len(data.factor_sizes)

    def votes(n):
        v = np.zeros((K, active.sum()), np.int64)
        for _ in range(n):
            k = rng.integers(K)
            f = data.sample_factors(batch_size, rng)
            f[:, k] = f[0, k]
            z = represent(data.sample_observations(f))
            v[k, np.argmin(z[:, active].var(0, ddof=1) / var[active])] += 1
        return v

    train = votes(num_train)
    clf = train.argmax(0)
    ev = votes(num_eval)
    return ev[clf, np.arange(len(clf))].sum() / ev.sum()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="runs/demo/factorvae")
    parser.add_argument("--skip", default="", help="comma-separated metrics to skip, e.g. dci")
    parser.add_argument("--loop-votes", type=int, default=1500, help="votes for the per-vote loop (scaled up)")
    parser.add_argument("--on-the-fly", action="store_true", help="also time each metric encoding on the fly")
    parser.add_argument("--mig-samples", default="1000", help="num_samples values for mig_sampled (Chen's MIG), comma-separated; 0 skips")
    args = parser.parse_args()

    import torch

    from fvae_lib.data import DSprites
    from fvae_lib.encoding import EncodedGrid, encoder_representation
    from fvae_lib.metrics import beta_vae_score, dci, factor_vae_score, mig, mig_sampled
    from fvae_lib.config import TrainConfig
    from fvae_lib.runs import RunFolder, load_model
    from fvae_lib.train import Trainer

    data = DSprites(source="replica", progress=False)
    if RunFolder(args.run).has_checkpoint():
        vae, _ = load_model(args.run)
        print(f"encoder from {args.run}")
    else:
        tmp = tempfile.mkdtemp()
        trainer = Trainer(TrainConfig.from_preset("cpu", iterations=300), tmp, data=data, progress=False)
        trainer.run()
        vae = trainer.vae.eval()
        print("encoder: a 300-iteration cpu-preset FactorVAE (no run folder given)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    # 1. the encoder alone: eager against frozen, on the same images
    images = data.sample_observations(data.sample_factors(16384, np.random.default_rng(1)))
    rates, codes = {}, {}
    for name, freeze in (("eager", False), ("frozen", True)):
        rep = encoder_representation(vae, freeze=freeze)
        rep(images[:256])  # warm-up (and the frozen copy's build)
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            codes[name] = rep(images)
            best = min(best, time.perf_counter() - t0)
        rates[name] = len(images) / best
        print(f"encoder {name:<7} {rates[name]:8.0f} images/s")
    diff = np.abs(codes["frozen"] - codes["eager"]).max()
    print(f"frozen / eager {rates['frozen'] / rates['eager']:.2f}x; largest code difference {diff:.1e} "
          f"(codes up to {np.abs(codes['eager']).max():.2f})")

    skip = set(filter(None, args.skip.split(",")))
    metrics = [(n, f) for n, f in (("factor_vae", factor_vae_score), ("beta_vae", beta_vae_score), ("mig", mig), ("dci", dci))
               if n not in skip]
    header = f"{'metric':<12}{'total s':>9}{'encoding s':>12}{'scoring s':>11}  result"

    # 2a. on the fly: each metric encodes what it asks for (frozen encoder)
    if args.on_the_fly:
        print("\non the fly (frozen encoder):\n" + header)
        for name, fn in metrics:
            rep = Timed(encoder_representation(vae))
            t0 = time.perf_counter()
            out = fn(data, rep, np.random.default_rng(0))
            total = time.perf_counter() - t0
            shown = {k: round(v, 3) for k, v in out.items()}
            print(f"{name:<12}{total:9.1f}{rep.seconds:12.1f}{total - rep.seconds:11.1f}  {shown}", flush=True)

    # 2b. from the encoded grid: one pass over the dataset, then lookups
    t0 = time.perf_counter()
    grid = EncodedGrid.encode(data, encoder_representation(vae))
    grid_s = time.perf_counter() - t0
    print(f"\nfrom an EncodedGrid: {len(data):,} images encoded once in {grid_s:.1f} s "
          f"({len(data) / grid_s:.0f} images/s)\n" + header)
    total_all = grid_s
    for name, fn in metrics:
        t0 = time.perf_counter()
        out = fn(grid, grid.represent, np.random.default_rng(0))
        total = time.perf_counter() - t0
        total_all += total
        shown = {k: round(v, 3) for k, v in out.items()}
        print(f"{name:<12}{total:9.1f}{0.0:12.1f}{total:11.1f}  {shown}", flush=True)
    print(f"all of them, grid encoding included: {total_all:.1f} s")

    # 2c. Chen's MIG (q(z|x) samples over the whole dataset), from a grid of posteriors
    samples = [int(v) for v in args.mig_samples.split(",") if int(v) > 0]
    if samples:
        t0 = time.perf_counter()
        posteriors = EncodedGrid.encode(data, encoder_representation(vae, output="posterior"))
        print(f"\nmig_sampled (Chen's estimator): posteriors of the grid in {time.perf_counter() - t0:.1f} s")
        for s in samples:
            for seed in (0, 1):
                t0 = time.perf_counter()
                chen = mig_sampled(posteriors, posteriors.represent, np.random.default_rng(seed), num_samples=s,
                                   factor_indices=(1, 2, 3, 4))["mig"]
                print(f"  num_samples {s:>6}, seed {seed}: {time.perf_counter() - t0:6.1f} s   "
                      f"MIG {chen:.4f} (without shape, as Chen)", flush=True)

    # vectorised vs per-vote loop, same encoder, on fewer votes. Time is split three ways: encoding,
    # making the images (sampling factors is in scoring; unpacking the images is "images"), and the
    # scoring proper (factor sampling, variances, argmins, votes).
    n_votes = args.loop_votes
    print(f"\nFactorVAE metric, {n_votes} votes (the defaults have 15,000):")
    times = {}
    for name, fn in (("per-vote loop", factor_vae_per_vote_loop), ("vectorised", factor_vae_score)):
        rep = Timed(encoder_representation(vae))
        images = Timed(data.sample_observations)
        data.sample_observations = images
        t0 = time.perf_counter()
        fn(data, rep, np.random.default_rng(0), num_train=n_votes * 2 // 3, num_eval=n_votes // 3)
        total = time.perf_counter() - t0
        del data.sample_observations  # back to the class's method
        times[name] = total - rep.seconds - images.seconds
        print(f"  {name:<14} scoring {times[name]:.3f} s, images {images.seconds:.2f} s, encoding {rep.seconds:.2f} s")
    print(f"  scoring speed-up {times['per-vote loop'] / times['vectorised']:.1f}x (with the shared overheads above)")

    # The scoring work alone: a free "encoder" and free "images", so only factor sampling, variances,
    # argmins and votes are timed.
    codes = np.random.default_rng(0).normal(size=(10000, 10)).astype(np.float32)
    data.sample_observations = lambda factors, rng=None: torch.zeros(len(factors), 1)
    alone = {}
    for name, fn in (("per-vote loop", factor_vae_per_vote_loop), ("vectorised", factor_vae_score)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            fn(data, lambda x: codes[: len(x)], np.random.default_rng(0), num_train=n_votes * 2 // 3, num_eval=n_votes // 3)
            best = min(best, time.perf_counter() - t0)
        alone[name] = best
        print(f"  scoring alone, {name:<14} {best * 1e3:.1f} ms")
    del data.sample_observations
    print(f"  scoring-alone speed-up {alone['per-vote loop'] / alone['vectorised']:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
