"""What every notebook shares: the run mode, the environment report, and load-or-train.

The run mode decides how big everything is, so a notebook shows one switch and the library owns
the sizes:

    smoke  seconds on a CPU: tests and CI (``FVAE_MODE=smoke``), a reduced dSprites grid, tens of steps
    cpu    minutes on a laptop CPU: the full grid, a few thousand steps, the CPU fast path
    gpu    minutes on a GPU (Colab's T4 included): 20,000 iterations per run, a fifteenth of the paper's
    paper  hours on a GPU: the paper's 3e5 iterations at batch 64, disentanglement_lib's metric sample
           counts; only when asked for by name

``FVAE_MODE`` in the environment wins; otherwise ``gpu`` on a GPU and ``cpu`` elsewhere. Before a
notebook trains, :func:`training_plan` prints which runs it will train or reuse, their iterations and a
time estimated from a short measured rate on this device.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import SMOKE_GRID, TrainConfig, default_preset
from .device import default_device, device_name
from .paths import configured_folder
from .runs import RunFolder
from .train import Trainer


@dataclass(frozen=True)
class Mode:
    name: str
    preset: str  # the training preset
    metric_settings: str  # "quick" or "full" (fvae_lib.evaluate.METRIC_SETTINGS)
    trained_enough: bool  # do models trained in this mode show the paper's effects?
    betas: tuple = (1.0, 4.0, 16.0)
    # the dataset of notebook 02's KL decomposition (None: the training data): q(z) is always taken over
    # every image of it, so the minutes-sized modes use a sub-grid of dSprites (11,520 images) rather than
    # all 737,280 (3 models x 4,000 samples x 737,280 components is minutes even on a GPU)
    decomposition_steps: dict | None = None
    sweep_betas: tuple = (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)
    sweep_gammas: tuple = (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)
    sweep_seeds: tuple = (0, 1, 2)  # notebook 07's own sweep (sweep_spec): the paper used 10 seeds [recollection]


MODES = {
    "smoke": Mode("smoke", "smoke", "quick", trained_enough=False,
                  sweep_betas=(1.0, 16.0), sweep_gammas=(10.0, 100.0), sweep_seeds=(0,)),
    "cpu": Mode("cpu", "cpu", "quick", trained_enough=True, decomposition_steps=SMOKE_GRID,
                sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0, 1)),
    "gpu": Mode("gpu", "gpu", "quick", trained_enough=True, decomposition_steps=SMOKE_GRID,
                sweep_betas=(1.0, 4.0, 16.0), sweep_gammas=(10.0, 35.0, 100.0), sweep_seeds=(0, 1)),
    "paper": Mode("paper", "paper", "full", trained_enough=True),
}


def run_mode(requested: str | None = None) -> Mode:
    """The mode in force: ``$FVAE_MODE``, else ``requested``, else gpu on a GPU and cpu elsewhere."""
    name = os.environ.get("FVAE_MODE") or requested or default_preset(default_device())
    if name not in MODES:
        raise ValueError(f"unknown run mode {name!r}; choose one of {sorted(MODES)} (FVAE_MODE or the notebook's MODE)")
    return MODES[name]


def in_colab() -> bool:
    return "google.colab" in sys.modules


def environment_report(mode: Mode | None = None) -> dict:
    """Versions, device and mode, as one dict a setup cell prints."""
    import matplotlib
    import numpy

    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "device": device_name(),
        "colab": in_colab(),
    }
    if mode is not None:
        report["mode"] = mode.name
        report["training preset"] = mode.preset
    report["runs folder"] = str(runs_dir())
    if runs_are_temporary():
        report["note"] = ("Colab's disk is wiped when the runtime ends; to keep trained runs, run "
                          "`from fvae_lib.notebook import keep_runs_on_drive; keep_runs_on_drive()` first")
    return report


def keep_runs_on_drive(folder: str = "fvae-runs") -> Path:
    """On Colab: mount Google Drive and keep runs in ``MyDrive/<folder>``, so they outlive the runtime.

    Sets ``FVAE_RUNS_DIR`` for this kernel; every notebook that calls it reuses the runs found there.
    """
    if not in_colab():
        raise RuntimeError("keep_runs_on_drive() is for Colab; elsewhere set FVAE_RUNS_DIR to any folder")
    from google.colab import drive  # noqa: PLC0415 -- exists only on Colab

    drive.mount("/content/drive")
    path = Path("/content/drive/MyDrive") / folder
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FVAE_RUNS_DIR"] = str(path)
    print(f"runs are kept in {path} (Google Drive)")
    return path


def runs_dir() -> Path:
    """``$FVAE_RUNS_DIR``, else the ``runs/`` folder of a source checkout, else ``./runs``."""
    return configured_folder("FVAE_RUNS_DIR", "runs", Path("runs").resolve())


def run_folder(name: str, mode: Mode) -> Path:
    return runs_dir() / mode.name / name


def runs_are_temporary() -> bool:
    """On Colab with runs outside Google Drive: the runtime's disk, wiped when it ends."""
    return in_colab() and not str(runs_dir()).startswith("/content/drive")


def is_finished(run: Path) -> bool:
    done, asked = RunFolder(run).trained_steps()
    return asked > 0 and done >= asked


# --------------------------------------------------------------------------------------------------
# The plan: what a notebook will train, and how long it should take here
# --------------------------------------------------------------------------------------------------

_RATES: dict[tuple, tuple[float, float]] = {}  # what sets a step's cost -> (it/s, GFLOP per iteration)
_ANNOUNCED: set[Path] = set()  # run folders whose training a printed plan has announced


def measure_rate(config: TrainConfig, data=None, steps: int = 8) -> tuple[float, float]:
    """(iterations per second, GFLOP per iteration) of ``config``'s training step on this device.

    A few real steps of a throwaway trainer after two warm-up steps (FLOPs of one step counted by torch's
    FlopCounterMode: matmuls and convolutions). Cached per network and batch shape, device and precision.
    """
    from torch.utils.flop_counter import FlopCounterMode

    # everything that changes the cost of a step (not the seed, the weights or the schedule)
    key = (config.model, config.batch_size, config.z_dim, config.d_hidden_layers, repr(config.data_steps),
           config.device, config.precision, config.channels_last, config.compile)
    if key not in _RATES:
        with tempfile.TemporaryDirectory() as folder:
            trainer = Trainer(config, folder, data=data, progress=False)
            cuda = trainer.device.type == "cuda"
            with FlopCounterMode(display=False) as counter:
                trainer.train_step()
            trainer.train_step()
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            if cuda:
                torch.cuda.synchronize()
            _RATES[key] = (steps / (time.perf_counter() - t0), counter.get_total_flops() / 1e9)
    return _RATES[key]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class PlannedRun:
    name: str
    config: TrainConfig
    folder: Path
    done: int  # iterations already trained (a finished run: all of them)
    it_per_s: float | None = None
    gflop_per_it: float | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.config.iterations - self.done)

    @property
    def seconds(self) -> float:
        return self.remaining / self.it_per_s if self.remaining and self.it_per_s else 0.0


class TrainingPlan(list):
    """The runs a notebook needs, with what is already trained and the time the rest should take here."""

    def __init__(self, runs, mode: "Mode"):
        super().__init__(runs)
        self.mode = mode

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self)

    def __str__(self) -> str:
        device = device_name()
        lines = [f"Training plan, mode {self.mode.name!r} on {device}; runs in {runs_dir() / self.mode.name}"]
        for r in self:
            what = r.config.model + (f" gamma={r.config.gamma:g}" if r.config.model == "factorvae" else f" beta={r.config.beta:g}")
            if not r.remaining:
                status = f"finished ({r.config.iterations:,} iterations): reused"
            elif r.done:
                status = f"resumes at {r.done:,}: {r.remaining:,} of {r.config.iterations:,} iterations, about {_duration(r.seconds)}"
            else:
                status = f"trains {r.config.iterations:,} iterations, about {_duration(r.seconds)}"
            lines.append(f"  {r.name:<16} {what:<22} {status}")
        rates = {r.config.model: (r.it_per_s, r.gflop_per_it) for r in self if r.it_per_s}
        for model, (rate, gflop) in rates.items():
            lines.append(f"  measured here: {model} {rate:.1f} it/s ({gflop:.1f} GFLOP per iteration, {rate * gflop:.0f} GFLOP/s)")
        todo = [r for r in self if r.remaining]
        lines.append(f"Total: about {_duration(self.seconds)} of training" if todo else "Nothing to train: every run is reused.")
        if todo and runs_are_temporary():
            lines.append("Colab's disk is wiped when the runtime ends: keep_runs_on_drive() (fvae_lib.notebook) keeps runs on Drive.")
        if todo and self.mode.name != "paper" and self.seconds > 600:
            lines.append("That is long for a notebook: a smaller mode (MODE = 'smoke') runs in seconds.")
        return "\n".join(lines)

    __repr__ = __str__


def training_plan(runs, mode: "Mode", data=None, announce: bool = True) -> TrainingPlan:
    """Which of ``runs`` will be trained, resumed or reused, and how long training should take on this device.

    Args:
        runs: (name, model, overrides) triples, as :func:`load_or_train` takes them.
        mode: the run mode.
        data: the dataset, to time the step without loading it again.
        announce: remember these runs as announced, so :func:`load_or_train` does not print them again.
    """
    planned = []
    for name, model, overrides in runs:
        config = TrainConfig.from_preset(mode.preset, model=model, **overrides)
        folder = run_folder(name, mode)
        run = PlannedRun(name, config, folder, RunFolder(folder).trained_steps()[0])
        if run.remaining:
            run.it_per_s, run.gflop_per_it = measure_rate(config, data)
        planned.append(run)
        if announce:
            _ANNOUNCED.add(folder)
    return TrainingPlan(planned, mode)


def load_or_train(name: str, mode: Mode, model: str = "factorvae", progress: bool = True, data=None, **overrides):
    """Reuse the finished run ``runs/<mode>/<name>``, or train (or finish) it.

    Returns (vae in eval mode, TrainConfig, history rows). The config is the mode's preset with
    ``overrides`` (gamma, beta, seed, ...); a folder holding a different config is an error rather
    than silently reused.
    """
    run = run_folder(name, mode)
    config = TrainConfig.from_preset(mode.preset, model=model, **overrides)
    if is_finished(run):
        saved = RunFolder(run).read_config()
        differs = config.defining_differences(saved)
        if differs:
            raise ValueError(f"{run} holds a run with other settings ({sorted(differs)}); delete it or use another name")
        vae, config = RunFolder(run).load_model()
        return vae, config, RunFolder(run).read_history()
    if run not in _ANNOUNCED:  # say what is about to happen, and how long it should take
        print(training_plan([(name, model, overrides)], mode, data=data))
    trainer = Trainer(config, run, resume=RunFolder(run).exists(), data=data, progress=progress)
    trainer.run()
    return trainer.vae.eval(), config, trainer.folder.read_history()


# --------------------------------------------------------------------------------------------------
# Notebook 07's sweep: the same run folders as the other notebooks
# --------------------------------------------------------------------------------------------------

def model_to_show(name: str, mode: Mode, trained):
    """The model a figure or a score should show: ``trained`` (the mode's own) where the mode trains enough;
    in smoke mode, the reference sweep's model of that name (``reference/models``), since a few dozen smoke
    steps draw grey squares. Says which it is."""
    if mode.trained_enough:
        return trained
    from .reference import load_reference_model, model_names

    try:
        shipped = model_names()
    except FileNotFoundError:
        shipped = []
    if name not in shipped:
        print(f"{mode.name} mode: {name} is the untrained {mode.preset} run (no reference model of that name to show instead)")
        return trained
    vae, config = load_reference_model(name)
    print(f"{mode.name} mode: showing the reference model {name} ({config.iterations:,} iterations on a CPU, reference/), "
          f"not the {mode.preset} run trained here, which is untrained")
    return vae


def sweep_spec(mode: Mode):
    """The sweep of ``mode`` (notebook 07): its grid and seeds, trained into ``runs/<mode>``, where notebooks
    01-06 keep their runs, so a run they trained (``betavae_b4``, ``factorvae_g35``) is reused, not retrained."""
    from .sweep import SweepSpec

    return SweepSpec.from_dict(dict(
        grid={"betavae": list(mode.sweep_betas), "factorvae": list(mode.sweep_gammas)}, seeds=list(mode.sweep_seeds),
        preset=mode.preset, settings="quick" if mode.name == "smoke" else "full", out=str(runs_dir() / mode.name)))


def sweep_command(mode: Mode) -> str:
    """The command line that runs :func:`sweep_spec` outside the notebook (it prints progress; resumable)."""
    spec = sweep_spec(mode)
    grid = " ".join(f"--{m} {','.join(f'{v:g}' for v in vs)}" for m, vs in spec.grid.items())
    return (f"python -m fvae_lib sweep {grid} --seeds {','.join(map(str, spec.seeds))} --preset {spec.preset} "
            f"--settings {spec.settings} --out {spec.out}")
