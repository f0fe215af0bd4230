"""Evaluate a run folder: the metrics, the KL decomposition and the figures, into the folder itself."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .config import resolve_device  # a missing GPU is a ConfigError: one line, exit status 2
from .data import DSprites
from .decomposition import kl_decomposition
from .encoding import EncodedGrid, encoder_representation, sample_codes
from .metrics import beta_vae_score, dci, factor_vae_score, images_encoded, mig, mig_sampled
from .plots import kl_bars, latents_vs_factors, save_figure, write_run_figures
from .runs import RunFolder

# disentanglement_lib's defaults; quick, for the minutes-sized modes; smoke, for smoke runs and the tests
METRIC_SETTINGS = {
    "full": {
        "factor_vae": dict(batch_size=64, num_train=10000, num_eval=5000, num_variance_estimate=10000),
        "beta_vae": dict(batch_size=64, num_train=10000, num_eval=5000),
        "mig": dict(num_train=10000),
        "dci": dict(num_train=10000, num_test=5000),
        # Chen et al.'s estimator with their sample count and their dSprites factors (no shape)
        "mig_sampled": dict(num_samples=10000, factor_indices=(1, 2, 3, 4)),
        "decomposition": dict(num_samples=2000),  # q(z) over every image of the dataset
    },
    "quick": {
        "factor_vae": dict(batch_size=64, num_train=300, num_eval=200, num_variance_estimate=2000),
        "beta_vae": dict(batch_size=64, num_train=300, num_eval=200),
        "mig": dict(num_train=2000),
        "dci": dict(num_train=500, num_test=300),
        "mig_sampled": dict(num_samples=200, factor_indices=(1, 2, 3, 4)),
        "decomposition": dict(num_samples=500),
    },
    # the smoke mode and the tests: enough to run every code path, too few to read anything from the numbers
    "smoke": {
        "factor_vae": dict(batch_size=64, num_train=100, num_eval=100, num_variance_estimate=1000),
        "beta_vae": dict(batch_size=64, num_train=150, num_eval=100),
        "mig": dict(num_train=1000),
        "dci": dict(num_train=200, num_test=100),
        "mig_sampled": dict(num_samples=100, factor_indices=(1, 2, 3, 4)),
        "decomposition": dict(num_samples=200),
    },
}


# every metric evaluate knows, in a fixed order: a metric's random stream is seeded by its place here
METRICS = {"factor_vae": factor_vae_score, "beta_vae": beta_vae_score, "mig": mig, "dci": dci, "mig_sampled": mig_sampled}


def evaluate_run(run_dir: str | os.PathLike, settings: str = "full", seed: int = 0, metrics=("factor_vae", "beta_vae", "mig", "dci"),
                 data=None, device: str = "auto", figures: bool = True, encode_grid: bool | None = None,
                 decomposition: bool = True, progress: bool = False, decomposition_samples: int | None = None) -> dict:
    """Score a run's encoder and write ``metrics.json`` (atomically) and figures into its folder.

    metrics: any of factor_vae, beta_vae, mig, dci (the default four) and mig_sampled (Chen's MIG estimator:
        q(z|x) samples of the whole dataset; minutes on a CPU in full: benchmarks/README.md).
    encode_grid: score the metrics from every image of the dataset encoded once
        (:class:`fvae_lib.encoding.EncodedGrid`: the same scores as encoding on the fly). Default: whenever
        the grid is encoded anyway (for the decomposition or mig_sampled), or the metrics would encode more
        images than the dataset holds.
    decomposition: estimate the KL decomposition with q(z) the aggregate posterior of every image of the
        dataset (:func:`fvae_lib.decomposition.kl_decomposition`); this needs q(z|x) of the whole grid.
    device: where the encoder runs; "auto" is the GPU when there is one.
    decomposition_samples: samples of q(z) for the decomposition's Monte Carlo averages (default: the settings').
    progress: tqdm bars for the long steps (grid encoding, mig_sampled) and a line as each metric starts.
    Returns the dict written: every metric's outputs and seconds, the KL decomposition, the settings.
    """
    run_dir = Path(run_dir)
    if settings not in METRIC_SETTINGS:
        raise ValueError(f"settings must be one of {sorted(METRIC_SETTINGS)}, got {settings!r}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    folder = RunFolder(run_dir)
    vae, config = folder.load_model(resolve_device(device))
    data = data if data is not None else DSprites(source=config.data_source, steps=config.data_steps, progress=False)
    represent = encoder_representation(vae)
    chosen = METRIC_SETTINGS[settings]
    result = {"run": str(run_dir), "settings": settings, "seed": seed, "metrics": {}}
    posterior = decomposition or "mig_sampled" in metrics  # q(z|x) of every image: a grid of posteriors
    if encode_grid is None:
        encode_grid = posterior or images_encoded({m: chosen[m] for m in metrics}, len(data)) > len(data)
    source, source_represent, posteriors = data, represent, None
    if encode_grid or posterior:
        t0 = time.perf_counter()
        if posterior:  # one pass gives both: the means are the first half of the posterior columns
            posteriors, grid = EncodedGrid.encode_posteriors(data, vae, progress=progress)
        else:
            grid = EncodedGrid.encode(data, represent, progress=progress)
        if encode_grid:
            source, source_represent = grid, grid.represent
        result["grid_encoding_seconds"] = round(time.perf_counter() - t0, 2)
    result["metrics_from"] = "encoded grid" if encode_grid else "encoded on the fly"
    for name in metrics:
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, list(METRICS).index(name)])  # a metric's stream doesn't depend on the others
        if progress:
            print(f"scoring {name} ...", flush=True)
        if name == "mig_sampled":
            scores = mig_sampled(posteriors, posteriors.represent, rng, progress=progress, **chosen[name])
        else:
            scores = METRICS[name](source, source_represent, rng, **chosen[name])
        result["metrics"][name] = {**scores, "seconds": round(time.perf_counter() - t0, 2)}
    if decomposition:
        t0 = time.perf_counter()
        options = dict(chosen["decomposition"], **({"num_samples": decomposition_samples} if decomposition_samples else {}))
        result["decomposition"] = kl_decomposition(vae, data, np.random.default_rng([seed, 99]), posteriors=posteriors, **options)
        result["decomposition"]["num_samples"] = options["num_samples"]
        result["decomposition"]["seconds"] = round(time.perf_counter() - t0, 2)
    folder.write_metrics(result)
    if figures:
        codes, factors = sample_codes(source, source_represent, 5000, np.random.default_rng([seed, 7]))
        write_run_figures(run_dir, vae, data, folder.read_history())
        save_figure(latents_vs_factors(codes, factors, data), folder.figure("latents_vs_factors"))
        if decomposition:
            save_figure(kl_bars(np.array(result["decomposition"]["avg_kl_per_dim"])), folder.figure("kl_per_latent"))
        result["figures"] = folder.figures()
    return result

