"""fvae_lib: FactorVAE ("Disentangling by Factorising", Kim & Mnih, ICML 2018) as a small tested library.

The public surface, each name from its one home (also importable from there):

    data         DSprites, GroundTruthData, BatchSampler, DatasetError, render_dsprites
    config       TrainConfig, ConfigError                      what defines a run
    models       VAE, Discriminator                            the paper's networks
    algorithm    factor_vae_step, beta_vae_step, METHODS       one iteration (Algorithm 2)
    train        Trainer, TrainingDiverged                     the loop, for any step
    runs         RunFolder, load_model                         a run folder's files
    decomposition  kl_decomposition                            I(x;z), TC and the rest, over a dataset
    metrics      factor_vae_score, beta_vae_score, mig, dci    disentanglement scores
    evaluate     evaluate_run                                  score a run folder
    sweep        SweepSpec;  engines  run_sweep                a grid of runs

Only the dataset and the figure display are imported with the package; the rest loads on first use
(``fvae_lib.Trainer`` imports :mod:`fvae_lib.train` then), so ``import fvae_lib`` stays quick in a sweep's
worker processes.
"""
from .data import BatchSampler, DatasetError, DSprites, GroundTruthData, render_dsprites
from .display import show_figures_in_notebooks

__version__ = "0.3.0"

_LAZY = {
    "TrainConfig": "config", "ConfigError": "config", "VAE": "models", "Discriminator": "models",
    "factor_vae_step": "algorithm", "beta_vae_step": "algorithm", "METHODS": "algorithm",
    "Trainer": "train", "TrainingDiverged": "train", "RunFolder": "runs", "load_model": "runs",
    "kl_decomposition": "decomposition", "factor_vae_score": "metrics", "beta_vae_score": "metrics", "mig": "metrics",
    "dci": "metrics", "evaluate_run": "evaluate", "SweepSpec": "sweep", "run_sweep": "engines",
}
__all__ = ["BatchSampler", "DatasetError", "DSprites", "GroundTruthData", "render_dsprites", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fvae_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# In a notebook, the library's figures (plain matplotlib Figures, no pyplot) show as pictures from the
# first import on, whatever the backend; outside IPython this does nothing.
show_figures_in_notebooks()
