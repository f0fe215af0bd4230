"""Training-loop benchmark: the library's FactorVAE iteration against plain hand-written loops.

All run the paper's networks at batch 64 on the same data in the same process, measured in alternating
rounds so background noise hits every loop alike. The baseline ("plain", #21's) is :class:`PeerLoop`, the
fastest plain loop we know of the same algorithm: a peer's step order with its FLOPs, in-place ReLUs, batches
drawn once. ``textbook`` is :class:`PlainLoop`, the loop as public implementations write it (with the detach
fix). Prints, with the CPU's model and flags, the thread count and the machine's load: iterations per second,
ms per iteration, achieved GFLOP/s (FLOPs of one iteration counted by torch's FlopCounterMode) and the ratio
to the plain loop; the share of an iteration spent drawing the two batches; with --startup also start-up time
and peak memory of `python -m fvae_lib train` (bench_startup.py). "fast" is the CPU fast path (it runs only
where bf16 is native: AVX512-BF16 or AMX), "fp32" the plain precision.

To see how an AVX2-only CPU trains on one that has AVX-512, cap both kernel libraries:
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_train.py`` (the library then
takes fp32, as it does on such a CPU). The clock and caches stay this CPU's: record such figures as emulated.
(MKL, which runs the matrix products, is not capped by either: on this AMD CPU it ignores
``MKL_ENABLE_INSTRUCTIONS``, 165 GFLOP/s even at SSE4_2, and runs no faster than the AVX2 FMA peak of 2 cores,
166 GFLOP/s at 2.6 GHz; benchmarks/README.md.) The machine's noise moves
single rounds by 20% or more: many short rounds (``--seconds 1 --rounds 30``) give a steadier median.

    python benchmarks/bench_train.py [--seconds 8] [--rounds 3] [--variants fp32,fast,fast+compile] [--startup]
"""
from __future__ import annotations

import argparse
import os
import statistics
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


def vae_terms(enc, dec, disc, x):
    """Both plain loops' VAE forward: z, the reconstruction and KL terms, D(z) and the TC estimate."""
    mu, logvar = enc(x).chunk(2, 1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / len(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
    d_z = disc(z)
    return z, recon, kl, d_z, (d_z[:, 0] - d_z[:, 1]).mean()


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
        z, recon, kl, d_z, tc = vae_terms(self.enc, self.dec, self.disc, x1)
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


class PeerLoop:
    """#21's baseline: a peer implementation's loop (1Konny's step order) made to run on current PyTorch, and as
    fast as a hand-written loop gets without changing the numbers: in-place ReLUs, a few batches drawn once and
    cycled (no sampling in the loop), plain Adam per network, and 1Konny's FLOPs, which reuse D(z) of the VAE
    step for D's class 0. Reusing it after the VAE update crashes current PyTorch (the in-place error), unless
    each backward is told which parameters it serves (``inputs=``): the VAE loss's backward then fills no D
    gradient, and D's backward does not reach into the updated encoder."""

    def __init__(self, images_u8: torch.Tensor, gamma=35.0, batch=64, kept=8):
        self.gamma, self.batch = gamma, batch
        self.enc, self.dec, self.disc = plain_networks()
        for net in (self.enc, self.dec, self.disc):
            for m in net.modules():
                if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
                    m.inplace = True
        self.vae_params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.d_params = list(self.disc.parameters())
        self.opt_vae = torch.optim.Adam(self.vae_params, 1e-4, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(self.d_params, 1e-4, betas=(0.5, 0.9))
        self.batches = [images_u8[torch.randint(len(images_u8), (batch,))].float() for _ in range(kept)]
        self.i = 0

    def step(self):
        b, n = self.batch, len(self.batches)
        x1, x2 = self.batches[self.i % n], self.batches[(self.i + 1) % n]
        self.i += 2
        z, recon, kl, d_z, tc = vae_terms(self.enc, self.dec, self.disc, x1)
        self.opt_vae.zero_grad()
        (recon + kl + self.gamma * tc).backward(inputs=self.vae_params, retain_graph=True)
        self.opt_vae.step()
        with torch.no_grad():
            mu2, logvar2 = self.enc(x2).chunk(2, 1)
            z2 = mu2 + torch.exp(0.5 * logvar2) * torch.randn_like(mu2)
            zp = z2.gather(0, torch.rand_like(z2).argsort(0))
        ones, zeros = torch.ones(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)
        d_loss = 0.5 * (F.cross_entropy(d_z, zeros) + F.cross_entropy(self.disc(zp), ones))
        self.opt_d.zero_grad()
        d_loss.backward(inputs=self.d_params)
        self.opt_d.step()
        return recon.item()


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
    "fp32": dict(precision="fp32", channels_last=True),  # the library in fp32, as "auto" runs it on a CPU without native bf16
    "fp32-nchw": dict(precision="fp32", channels_last=False),  # the same before #21 (convolutions in NCHW)
    "fast": dict(precision="bf16", channels_last=True),  # the CPU fast path ("auto" on native-bf16 CPUs)
    "bf16": dict(precision="bf16", channels_last=False),
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
    parser.add_argument("--variants", default="fp32,fp32-nchw,fast", help=f"from {sorted(VARIANTS)}, each optionally +compile")
    parser.add_argument("--peak-gflops", type=float, default=166.0,
                        help="the machine's fp32 peak (default: 2 Zen 4 cores x 2.6 GHz x 32 FLOP/cycle)")
    parser.add_argument("--startup", action="store_true", help="also measure start-up time and peak memory")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for every loop (default: torch's, the cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from fvae_lib.config import cpu_has_native_bf16
    from fvae_lib.data import BatchSampler, DSprites

    torch.manual_seed(0)
    data = DSprites(source="replica", progress=False)
    print(machine_report())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ATen kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_has_native_bf16()}, dataset {len(data)} images")
    sub = torch.randperm(len(data))[:20000]
    images = data.images(sub).to(torch.uint8)
    loops = {"plain": PeerLoop(images).step, "textbook": PlainLoop(images).step}
    tmp = tempfile.TemporaryDirectory()
    names = [n for n in args.variants.split(",") if n.partition("+")[0] != "fast" or cpu_has_native_bf16()]
    skipped = sorted(set(args.variants.split(",")) - set(names))
    if skipped:
        print(f"left out: {', '.join(skipped)} (bf16 is not native here, so the library would not take it)")
    variants = {name: trainer_for(name, data, f"{tmp.name}/{name}") for name in names}
    loops.update({name: t.train_step for name, t in variants.items()})

    flops = {name: flops_of(step) for name, step in loops.items()}
    for step in loops.values():
        for _ in range(5):
            step()  # warm-up (and compilation)
    rates = {k: [] for k in loops}
    load = []
    for _ in range(args.rounds):  # alternate, so background noise hits every loop alike
        for name, step in loops.items():
            rates[name].append(rate(step, args.seconds))
        load.append(os.getloadavg()[0])
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
    print(f"load average (1 min) after each round: {', '.join(f'{x:.2f}' for x in load)}; best of {args.rounds} rounds of {args.seconds:g} s")
    print("vs plain: best rate against the plain loop's best; per round: each round's rate against the plain loop's in "
          "the same round, median (min-max)")
    print(f"{'loop':<14}{'it/s':>7}{'ms/it':>8}{'GFLOP/it':>9}{'GFLOP/s':>9}{'% fp32 peak':>12}{'vs plain':>9}"
          f"{'per round':>18}{'start-up s':>11}{'peak GiB':>9}")
    for name, r in rates.items():
        best = max(r)
        gflops = best * flops[name] / 1e9
        per_round = [a / b for a, b in zip(r, rates["plain"])]
        s_up, peak = (f"{startup[name][0]:.2f}", f"{startup[name][1]:.2f}") if name in startup else ("", "")
        print(f"{name:<14}{best:7.2f}{1e3 / best:8.1f}{flops[name] / 1e9:9.2f}{gflops:9.1f}{gflops / args.peak_gflops:12.0%}"
              f"{best / base:9.2f}{f'{statistics.median(per_round):.2f} ({min(per_round):.2f}-{max(per_round):.2f})':>18}"
              f"{s_up:>11}{peak:>9}")
    first = next(iter(variants))
    print(f"drawing two batches: {sample_ms:.3f} ms = {sample_ms * max(rates[first]) / 10:.2f}% of a {first} iteration")


def machine_report() -> str:
    """The CPU's model, the flags that decide the kernels, the cores this process may use and the load."""
    model, flags = "unknown CPU", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = " ".join(f"{f}={'yes' if f in flags else 'no'}" for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"))
    caps = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)}
    return (f"{model}; {shown}; {len(os.sched_getaffinity(0))} cores for this process; load average {os.getloadavg()[0]:.2f}"
            + (f"; kernels capped: {caps} (emulated)" if caps else ""))


if __name__ == "__main__":
    main()
