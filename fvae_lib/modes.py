"""The run modes: one switch in every notebook, the library owning the sizes, and where a mode's runs live.

    smoke  seconds on a CPU: tests and CI (``FVAE_MODE=smoke``), a reduced dSprites grid, tens of steps
    cpu    minutes on a laptop CPU: the full grid, a few thousand steps, the CPU fast path
    gpu    minutes on a GPU (Colab's T4 included): 20,000 iterations per run, a fifteenth of the paper's
    paper  hours on a GPU: the paper's 3e5 iterations at batch 64, disentanglement_lib's metric sample
           counts; only when asked for by name
    book   minutes on a CPU, training nothing the repository ships: the ``cpu`` mode, but every run that
           ``reference/models`` holds is read from there (the reference sweep's 5,000-iteration models and
           their logs); what the rendered book (``make book``) is executed in; only when asked for by name

``FVAE_MODE`` in the environment wins; otherwise ``gpu`` on a GPU and ``cpu`` elsewhere. A mode's runs are
``runs/<mode>/<name>`` (``$FVAE_RUNS_DIR`` moves ``runs/``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import SMOKE_GRID, default_preset
from .device import default_device
from .paths import configured_folder


@dataclass(frozen=True)
class Mode:
    name: str
    preset: str  # the training preset
    metric_settings: str  # "smoke", "quick" or "full" (fvae_lib.evaluate.METRIC_SETTINGS)
    trained_enough: bool  # do models trained in this mode show the paper's effects?
    betas: tuple = (1.0, 4.0, 16.0)
    # the dataset of notebook 02's KL decomposition (None: the training data): q(z) is always taken over
    # every image of it, so the minutes-sized modes use a sub-grid of dSprites (11,520 images) rather than
    # all 737,280 (3 models x 4,000 samples x 737,280 components is minutes even on a GPU)
    decomposition_steps: dict | None = None
    sweep_betas: tuple = (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)
    sweep_gammas: tuple = (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)
    sweep_seeds: tuple = (0, 1, 2)  # notebook 07's own sweep (sweep_spec): the paper used 10 seeds [recollection]
    from_reference: bool = False  # load_or_train reads a run reference/models ships instead of training it


MODES = {
    "smoke": Mode("smoke", "smoke", "smoke", trained_enough=False,
                  sweep_betas=(1.0, 16.0), sweep_gammas=(10.0, 100.0), sweep_seeds=(0,)),
    "cpu": Mode("cpu", "cpu", "quick", trained_enough=True, decomposition_steps=SMOKE_GRID,
                sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0, 1)),
    "gpu": Mode("gpu", "gpu", "quick", trained_enough=True, decomposition_steps=SMOKE_GRID,
                sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0, 1)),
    "paper": Mode("paper", "paper", "full", trained_enough=True),
    "book": Mode("book", "cpu", "quick", trained_enough=True, decomposition_steps=SMOKE_GRID,
                 sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0, 1),
                 from_reference=True),
}


def run_mode(requested: str | None = None) -> Mode:
    """The mode in force: ``$FVAE_MODE``, else ``requested``, else gpu on a GPU and cpu elsewhere."""
    name = os.environ.get("FVAE_MODE") or requested or default_preset(default_device())
    if name not in MODES:
        raise ValueError(f"unknown run mode {name!r}; choose one of {sorted(MODES)} (FVAE_MODE or the notebook's MODE)")
    return MODES[name]


def runs_dir() -> Path:
    """``$FVAE_RUNS_DIR``, else the ``runs/`` folder of a source checkout, else ``./runs``."""
    return configured_folder("FVAE_RUNS_DIR", "runs", Path("runs").resolve())


def run_folder(name: str, mode: Mode) -> Path:
    return runs_dir() / mode.name / name


