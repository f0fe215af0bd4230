"""The training plan: before a notebook trains, which runs it will train, resume or reuse, and how long the rest
should take on this device, from a short rate measured here."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import TrainConfig
from .device import device_name
from .environment import runs_are_temporary
from .modes import Mode, run_folder, runs_dir
from .reference import shipped_iterations
from .runs import RunFolder
from .train import Trainer

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
    shipped: int | None = None  # the book mode: read from reference/models (trained this many iterations)

    @property
    def remaining(self) -> int:
        return 0 if self.shipped else max(0, self.config.iterations - self.done)

    @property
    def seconds(self) -> float:
        return self.remaining / self.it_per_s if self.remaining and self.it_per_s else 0.0


class TrainingPlan(list):
    """The runs a notebook needs, with what is already trained and the time the rest should take here."""

    def __init__(self, runs, mode: Mode):
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
            if r.shipped:
                status = f"read from reference/models ({r.shipped:,} iterations): not trained here"
            elif not r.remaining:
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
        lines.append(f"Total: about {_duration(self.seconds)} of training" if todo else
                     "Nothing to train: every run is read or reused.")
        if todo and runs_are_temporary():
            lines.append("Colab's disk is wiped when the runtime ends: keep_runs_on_drive() (fvae_lib.environment) keeps runs on Drive.")
        if todo and self.mode.name != "paper" and self.seconds > 600:
            lines.append("That is long for a notebook: a smaller mode (MODE = 'smoke') runs in seconds.")
        return "\n".join(lines)

    __repr__ = __str__


def training_plan(runs, mode: Mode, data=None, announce: bool = True) -> TrainingPlan:
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
        shipped = shipped_iterations(name) if mode.from_reference else None
        run = PlannedRun(name, config, folder, RunFolder(folder).trained_steps()[0], shipped=shipped)
        if run.remaining:
            run.it_per_s, run.gflop_per_it = measure_rate(config, data)
        planned.append(run)
        if announce:
            _ANNOUNCED.add(folder)
    return TrainingPlan(planned, mode)




def was_announced(run: Path) -> bool:
    """Has a printed plan already said that ``run`` will be trained (so :func:`~fvae_lib.notebook.load_or_train`
    need not print it again)?"""
    return Path(run) in _ANNOUNCED
