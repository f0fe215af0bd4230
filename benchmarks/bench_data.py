"""Data benchmark: full replica build (time, peak memory) and batch sampling throughput.

Prints figures; asserts nothing. Targets (issue 2): build < 60 s and < 4 GiB peak on a 2-core CPU;
sampling well under 5% of a training step (see bench_train.py for the share of a real step).

    python benchmarks/bench_data.py [--skip-build]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import torch


def build_in_subprocess() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import time, json; t=time.perf_counter();"
            "from fvae_lib.data import DSprites;"
            f"d=DSprites(source='replica', data_dir={tmp!r}, progress=False);"
            "print(json.dumps({'seconds': time.perf_counter()-t, 'mean_pixel': d.mean_pixel()}))"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_gib"] = max(peak_kib, before) / 2**20
    return result


def sampling(data, batch_size=64, seconds=2.0) -> dict:
    from fvae_lib.data import BatchSampler

    sampler = BatchSampler(data, batch_size, seed=0)
    for _ in range(20):
        sampler.sample()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sampler.sample()
        n += 1
    dt = (time.perf_counter() - t0) / n
    return {"ms_per_batch": dt * 1e3, "images_per_second": batch_size / dt}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    from fvae_lib.data import DSprites

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_build:
        b = build_in_subprocess()
        print(f"full replica build: {b['seconds']:.1f} s, peak RSS {b['peak_rss_gib']:.2f} GiB "
              f"(targets < 60 s, < 4 GiB); mean pixel {b['mean_pixel']:.6f} (real file 0.042494)")
    t0 = time.perf_counter()
    data = DSprites(source="replica", progress=False)
    print(f"load from cache: {time.perf_counter() - t0:.2f} s")
    s = sampling(data)
    print(f"batch sampling (64, CPU): {s['ms_per_batch']:.3f} ms/batch, {s['images_per_second']:,.0f} images/s")


if __name__ == "__main__":
    main()
