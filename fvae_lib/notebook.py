"""What every notebook shares: the run mode, the environment report, and load-or-train.

The run mode decides how big everything is, so a notebook shows one switch and the library owns
the sizes:

    smoke  seconds on a CPU: tests and CI (``FVAE_MODE=smoke``), a reduced dSprites grid, tens of steps
    cpu    minutes on a laptop CPU: the full grid, a few thousand steps, the CPU fast path
    paper  a GPU: the paper's 3e5 iterations at batch 64, disentanglement_lib's metric sample counts

``FVAE_MODE`` in the environment wins; otherwise ``paper`` on a GPU and ``cpu`` elsewhere.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .train import TrainConfig, Trainer, load_checkpoint, load_model, read_config, read_history


@dataclass(frozen=True)
class Mode:
    name: str
    preset: str  # the training preset
    metric_settings: str  # "quick" or "full" (fvae_lib.evaluate.METRIC_SETTINGS)
    trained_enough: bool  # do models trained in this mode show the paper's effects?
    betas: tuple = (1.0, 4.0, 16.0)
    gammas: tuple = (35.0,)
    sweep_betas: tuple = (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)
    sweep_gammas: tuple = (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)
    sweep_seeds: tuple = (0, 1, 2)


MODES = {
    "smoke": Mode("smoke", "smoke", "quick", trained_enough=False,
                  sweep_betas=(1.0, 16.0), sweep_gammas=(10.0, 100.0), sweep_seeds=(0,)),
    "cpu": Mode("cpu", "cpu", "quick", trained_enough=True,
                sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0,)),
    "paper": Mode("paper", "paper", "full", trained_enough=True),
}


def run_mode(requested: str | None = None) -> Mode:
    """The mode in force: ``$FVAE_MODE``, else ``requested``, else paper on a GPU and cpu elsewhere."""
    name = os.environ.get("FVAE_MODE") or requested or ("paper" if torch.cuda.is_available() else "cpu")
    if name not in MODES:
        raise ValueError(f"unknown run mode {name!r}; choose one of {sorted(MODES)} (FVAE_MODE or the notebook's MODE)")
    return MODES[name]


def in_colab() -> bool:
    return "google.colab" in sys.modules


def environment_report(mode: Mode | None = None) -> dict:
    """Versions, device and mode, as one dict a setup cell prints."""
    import matplotlib
    import numpy

    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "colab": in_colab(),
    }
    if mode is not None:
        report["mode"] = mode.name
        report["training preset"] = mode.preset
    return report


def runs_dir() -> Path:
    """``$FVAE_RUNS_DIR``, else the ``runs/`` folder of a source checkout, else ``./runs``."""
    env = os.environ.get("FVAE_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "runs"
    return Path("runs").resolve()


def run_folder(name: str, mode: Mode) -> Path:
    return runs_dir() / mode.name / name


def is_finished(run: Path) -> bool:
    try:
        state = load_checkpoint(run)
    except Exception:  # noqa: BLE001 -- no checkpoint or unreadable: not finished
        return False
    return int(state["step"]) >= int(state["config"]["iterations"])


def load_or_train(name: str, mode: Mode, model: str = "factorvae", progress: bool = True, data=None, **overrides):
    """Reuse the finished run ``runs/<mode>/<name>``, or train (or finish) it.

    Returns (vae in eval mode, TrainConfig, history rows). The config is the mode's preset with
    ``overrides`` (gamma, beta, seed, ...); a folder holding a different config is an error rather
    than silently reused.
    """
    run = run_folder(name, mode)
    config = TrainConfig.from_preset(mode.preset, model=model, **overrides)
    if is_finished(run):
        saved = read_config(run)
        differs = config.defining_differences(saved)
        if differs:
            raise ValueError(f"{run} holds a run with other settings ({sorted(differs)}); delete it or use another name")
        vae, config = load_model(run)
        return vae, config, read_history(run)
    trainer = Trainer(config, run, resume=(run / "config.json").exists(), data=data, progress=progress)
    trainer.run()
    return trainer.vae.eval(), config, read_history(run)
