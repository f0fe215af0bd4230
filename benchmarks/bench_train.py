"""Training-loop benchmark: the library's FactorVAE iteration against a plain hand-written loop.

Both run the paper's networks at batch 64 on the same data in the same process, measured in
alternating rounds so background noise hits both alike. Prints iterations per second, ms per
iteration, achieved GFLOP/s (FLOPs of one iteration counted by torch's FlopCounterMode) and its share
of the machine's fp32 peak, the ratio library / plain (target >= 0.95), and the share of an iteration
spent drawing the two batches; with --startup also start-up time and peak memory of
`python -m fvae_lib train` (bench_startup.py). "fast" is the CPU fast path; "fp32" the plain precision.

    python benchmarks/bench_train.py [--seconds 8] [--rounds 3] [--variants fp32,fast,fast+compile] [--startup]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def plain_networks(z_dim=10):
    enc = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 2 * z_dim))
    dec = nn.Sequential(
        nn.Linear(z_dim, 128), nn.ReLU(), nn.Linear(128, 1024), nn.ReLU(), nn.Unflatten(1, (64, 4, 4)),
        nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    layers, width = [], z_dim
    for _ in range(6):
        layers += [nn.Linear(width, 1000), nn.LeakyReLU(0.2)]
        width = 1000
    disc = nn.Sequential(*layers, nn.Linear(1000, 2))
    return enc, dec, disc


class PlainLoop:
    """The textbook loop, as public implementations write it but with the detach fix: no tricks, just the algorithm."""

    def __init__(self, images_u8: torch.Tensor, gamma=35.0, batch=64):
        self.images, self.gamma, self.batch = images_u8, gamma, batch
        self.enc, self.dec, self.disc = plain_networks()
        self.opt_vae = torch.optim.Adam(list(self.enc.parameters()) + list(self.dec.parameters()), 1e-4, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), 1e-4, betas=(0.5, 0.9))

    def step(self):
        b = self.batch
        x1 = self.images[torch.randint(len(self.images), (b,))].float()
        x2 = self.images[torch.randint(len(self.images), (b,))].float()
        mu, logvar = self.enc(x1).chunk(2, 1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(self.dec(z), x1, reduction="sum") / b
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        d_z = self.disc(z)
        tc = (d_z[:, 0] - d_z[:, 1]).mean()
        self.opt_vae.zero_grad()
        (recon + kl + self.gamma * tc).backward()
        self.opt_vae.step()
        with torch.no_grad():
            mu2, logvar2 = self.enc(x2).chunk(2, 1)
            z2 = mu2 + torch.exp(0.5 * logvar2) * torch.randn_like(mu2)
            zp = torch.stack([z2[torch.randperm(b), j] for j in range(z2.shape[1])], 1)
        ones, zeros = torch.ones(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)
        d_loss = 0.5 * (F.cross_entropy(self.disc(z.detach()), zeros) + F.cross_entropy(self.disc(zp), ones))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        return recon.item()  # the plain loop syncs every step, as such loops do


def rate(step, seconds) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def flops_of(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


VARIANTS = {  # name -> TrainConfig options
    "fp32": dict(precision="fp32", channels_last=False),
    "fast": dict(precision="bf16", channels_last=True),  # the CPU fast path ("auto" on native-bf16 CPUs)
    "bf16": dict(precision="bf16", channels_last=False),
    "cl": dict(precision="fp32", channels_last=True),
}


def trainer_for(name, data, folder):
    from fvae_lib.config import TrainConfig
    from fvae_lib.train import Trainer

    base, _, extra = name.partition("+")
    opts = dict(VARIANTS[base], compile="default" if extra == "compile" else "off")
    return Trainer(TrainConfig.from_preset("paper", device="cpu", **opts), folder, data=data, progress=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="fp32,fast", help=f"from {sorted(VARIANTS)}, each optionally +compile")
    parser.add_argument("--peak-gflops", type=float, default=166.0,
                        help="the machine's fp32 peak (default: 2 Zen 4 cores x 2.6 GHz x 32 FLOP/cycle)")
    parser.add_argument("--startup", action="store_true", help="also measure start-up time and peak memory")
    args = parser.parse_args()

    from fvae_lib.data import BatchSampler, DSprites

    torch.manual_seed(0)
    data = DSprites(source="replica", progress=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {len(data)} images")
    sub = torch.randperm(len(data))[:20000]
    plain = PlainLoop(data.images(sub).to(torch.uint8))
    tmp = tempfile.TemporaryDirectory()
    variants = {name: trainer_for(name, data, f"{tmp.name}/{name}") for name in args.variants.split(",")}

    flops = flops_of(variants[next(iter(variants))].train_step)
    for step in [plain.step] + [t.train_step for t in variants.values()]:
        for _ in range(5):
            step()  # warm-up (and compilation)
    rates = {k: [] for k in ["plain", *variants]}
    for _ in range(args.rounds):  # alternate, so background noise hits every loop alike
        rates["plain"].append(rate(plain.step, args.seconds))
        for name, t in variants.items():
            rates[name].append(rate(t.train_step, args.seconds))
    sampler = BatchSampler(data, 64, seed=0)
    sample_ms = 1e3 / rate(lambda: (sampler.sample(), sampler.sample()), 2.0)

    startup = {}
    if args.startup:
        from bench_startup import measure

        for name in variants:
            opts = VARIANTS[name.partition("+")[0]]
            extra = ["--precision", opts["precision"], "--channels-last" if opts["channels_last"] else "--no-channels-last"]
            runs = [measure(extra, 30) for _ in range(3)]
            startup[name] = (min(r["startup_s"] for r in runs), max(r["peak_gib"] for r in runs))

    base = max(rates["plain"])
    print(f"FLOPs per FactorVAE iteration (batch 64, matmuls and convolutions): {flops / 1e9:.2f} GFLOP")
    print(f"{'loop':<14}{'it/s':>7}{'ms/it':>8}{'GFLOP/s':>9}{'% fp32 peak':>12}{'vs plain':>9}{'start-up s':>11}{'peak GiB':>9}")
    for name, r in rates.items():
        best = max(r)
        gflops = best * flops / 1e9
        s_up, peak = (f"{startup[name][0]:.2f}", f"{startup[name][1]:.2f}") if name in startup else ("", "")
        print(f"{name:<14}{best:7.2f}{1e3 / best:8.1f}{gflops:9.1f}{gflops / args.peak_gflops:12.0%}{best / base:9.2f}{s_up:>11}{peak:>9}")
    lib = max(rates[next(iter(variants))])
    print(f"drawing two batches: {sample_ms:.3f} ms = {sample_ms * lib / 10:.2f}% of a {next(iter(variants))} iteration")


if __name__ == "__main__":
    main()
