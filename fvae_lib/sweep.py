"""Sweeps: a grid of runs (models × β or γ × seeds), trained, scored and tabulated in one folder.

    python -m fvae_lib sweep reference/sweep.toml                          # from a spec file
    python -m fvae_lib sweep --betavae 1,4 --factorvae 35 --seeds 0,1 --preset cpu --out runs/cpu

A spec file (TOML) names the grid and, optionally, everything else::

    preset = "cpu"             # any TrainConfig preset
    iterations = 5000          # overrides the preset's
    seeds = [0, 1]
    metrics = ["factor_vae", "beta_vae", "mig"]
    out = "runs/reference"     # relative to the working directory
    [grid]
    betavae = [1, 4, 16]       # values of β
    factorvae = [10, 35, 100]  # values of γ

The sweep folder holds one run folder per run, named as the notebooks name theirs (``betavae_b4``,
``factorvae_g35_s1``; seed 0 has no suffix), so notebook 07 and a sweep into ``runs/<mode>`` see the same
runs; and beside them ``sweep.json`` (the resolved spec), ``results.csv`` and ``results.jsonl`` (one row per
run: settings, status, final loss terms, every metric, the KL decomposition) and ``trajectories.csv`` (the
FactorVAE metric of the encoder's snapshots along training).

A sweep is resumable: a run that is trained and scored is skipped, an interrupted one resumes from its last
checkpoint, and a failed run is reported in the table (its log is ``<run>/sweep.log``) without stopping the
others. Engines (:mod:`fvae_lib.engines`): worker processes on this machine, or submitit (SLURM, or its local
executor).
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import MODELS, PRESETS, ConfigError, TrainConfig
from .evaluate import METRICS, METRIC_SETTINGS

HYPERPARAMETER = {"betavae": "beta", "factorvae": "gamma"}  # the value a model's grid varies
DEFAULT_METRICS = ("factor_vae", "beta_vae", "mig")  # DCI is left out by default: ~3 CPU-minutes a run


def run_name(model: str, value: float, seed: int) -> str:
    """The run folder's name, as the notebooks write it: ``betavae_b4``, ``factorvae_g35_s1``."""
    key = HYPERPARAMETER[model][0]
    return f"{model}_{key}{float(value) + 0.0:g}" + (f"_s{seed}" if seed else "")  # + 0.0: -0.0 is 0


@dataclass
class SweepSpec:
    """What a sweep trains and how it scores it. ``grid`` maps each model to its values of β (β-VAE) or γ."""

    grid: dict[str, list[float]]
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str = "cpu"
    iterations: int | None = None
    snapshot_every: int | None = None
    batch_size: int | None = None
    data_source: str = "auto"
    device: str = "auto"
    precision: str = "auto"  # fp32, bf16 or auto (the fast path where bf16 is native); pin it to reproduce a sweep
    threads: int | None = None  # CPU threads per run (default: the cores divided among the workers; 1 per job on SLURM)
    mem_gb: float | None = None  # memory per job through submitit (SLURM's --mem)
    slurm: dict = field(default_factory=dict)  # more submitit/SLURM parameters, e.g. {partition = "gpu", gpus_per_node = 1}
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    settings: str = "full"
    decomposition_samples: int | None = None  # samples of q(z) for the KL decomposition (default: the settings')
    trajectory_every: int = 0  # score the snapshots whose step is a multiple of this (0: the run's snapshot_every; -1: none)
    # the KL decomposition of those snapshots too (about 3 CPU-minutes each on the full grid): true for every
    # run, or a list of run names
    trajectory_decomposition: bool | list[str] = False
    out: str | None = None
    publish: dict = field(default_factory=dict)  # {"folder": ..., "models": [...]}: see fvae_lib.reference.publish

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "SweepSpec":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"sweep spec {path} not found; write a TOML file with a [grid] table (see `python -m fvae_lib sweep --help`)")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover -- Python 3.10
            import tomli as tomllib
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"sweep spec {path} is not valid TOML: {err}") from None
        if values.get("publish", {}).get("folder"):  # relative to the spec file
            values["publish"]["folder"] = str(path.parent / values["publish"]["folder"])
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> "SweepSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"sweep spec: unknown keys {unknown}; known: {sorted(names)}")
        if "grid" not in values:
            raise ConfigError("sweep spec: no grid; give e.g. [grid] betavae = [1, 4] factorvae = [35]")
        spec = cls(**values)
        spec.validate()
        return spec

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Refuse, before any work, every value that is not what its key takes, saying what to write instead."""
        def integer(value) -> bool:  # a bool is an int to Python, never a seed or a count here
            return isinstance(value, int) and not isinstance(value, bool)

        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        def refuse(message: str) -> None:
            raise ConfigError(f"sweep spec: {message}")

        if not isinstance(self.grid, dict) or not self.grid:
            refuse("the grid is empty; give each model a list of values, e.g. betavae = [1, 4]")
        for model, values in self.grid.items():
            if model not in MODELS:
                refuse(f"unknown model {model!r} in the grid; choose from {MODELS}")
            if not isinstance(values, list) or not values or not all(number(v) and v >= 0 for v in values):
                refuse(f"grid.{model} must be a non-empty list of numbers >= 0 (its {HYPERPARAMETER[model]} values), got {values!r}")
            same = sorted({float(v) for v in values if [float(w) for w in values].count(float(v)) > 1})
            if same:
                refuse(f"grid.{model} gives the same {HYPERPARAMETER[model]} twice ({same[0]:g}; 0 and -0.0 count as one): "
                       f"list each value once")
        if not isinstance(self.seeds, list) or not self.seeds or not all(integer(v) and v >= 0 for v in self.seeds):
            refuse(f"seeds must be a non-empty list of integers >= 0, e.g. seeds = [0, 1]; got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            refuse(f"seeds lists a seed twice: {self.seeds!r}")
        for key in ("iterations", "snapshot_every", "batch_size", "threads"):
            value = getattr(self, key)
            if value is not None and not (integer(value) and value >= (0 if key == "snapshot_every" else 1)):
                refuse(f"{key} must be a whole number >= {0 if key == 'snapshot_every' else 1} (or left out), got {value!r}")
        if self.decomposition_samples is not None and not (integer(self.decomposition_samples) and self.decomposition_samples >= 2):
            refuse(f"decomposition_samples must be a whole number >= 2 (or left out for the settings' own), got {self.decomposition_samples!r}")
        if not (integer(self.trajectory_every) and self.trajectory_every >= -1):
            refuse(f"trajectory_every must be a whole number: N (every N steps), 0 (every snapshot) or -1 (none), got {self.trajectory_every!r}")
        if self.mem_gb is not None and not (number(self.mem_gb) and self.mem_gb > 0):
            refuse(f"mem_gb must be a number > 0 (or left out), got {self.mem_gb!r}")
        if not isinstance(self.slurm, dict):
            refuse(f"slurm must be a table of submitit parameters, e.g. [slurm] partition = \"gpu\"; got {self.slurm!r}")
        for key in ("preset", "data_source", "device", "precision", "settings"):
            if not isinstance(getattr(self, key), str):
                refuse(f"{key} must be a string, got {getattr(self, key)!r}")
        if self.preset not in PRESETS:
            refuse(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.settings not in METRIC_SETTINGS:
            refuse(f"settings must be one of {sorted(METRIC_SETTINGS)}, got {self.settings!r}")
        if not isinstance(self.metrics, list) or not all(isinstance(m, str) for m in self.metrics):
            refuse(f"metrics must be a list of metric names, e.g. [\"factor_vae\", \"mig\"]; got {self.metrics!r}")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            refuse(f"unknown metrics {unknown}; choose from {list(METRICS)}")
        if not isinstance(self.trajectory_decomposition, (bool, list)):
            refuse(f"trajectory_decomposition must be true, false or a list of run names, got {self.trajectory_decomposition!r}")
        if not isinstance(self.publish, dict):
            refuse(f"publish must be a table, e.g. [publish] folder = \"reference\"; got {self.publish!r}")
        self.tasks(threads=1)  # builds, and so validates, every run's config before any work starts

    def tasks(self, out: str | os.PathLike = ".", threads: int = 1) -> list[dict]:
        """One task per run, longest first (FactorVAE before β-VAE), so that workers finish together."""
        found = []
        for model in sorted(self.grid, key=lambda m: m != "factorvae"):
            for seed in self.seeds:
                for value in self.grid[model]:
                    config = TrainConfig.from_preset(
                        self.preset, model=model, device=self.device, seed=seed, iterations=self.iterations,
                        snapshot_every=self.snapshot_every, batch_size=self.batch_size, data_source=self.data_source,
                        precision=self.precision, threads=threads, **{HYPERPARAMETER[model]: float(value) + 0.0})
                    name = run_name(model, value, seed)
                    found.append(dict(name=name, folder=str(Path(out) / name), config=config.to_dict(),
                                      metrics=list(self.metrics), settings=self.settings,
                                      decomposition_samples=self.decomposition_samples,
                                      trajectory_every=self.trajectory_every,
                                      trajectory_decomposition=self.trajectory_decomposition is True
                                      or name in (self.trajectory_decomposition or ())))
        names = [t["name"] for t in found]
        if len(set(names)) != len(names):
            raise ConfigError(f"sweep spec: two grid values give the same run name ({sorted(n for n in names if names.count(n) > 1)[0]})")
        if isinstance(self.trajectory_decomposition, list):
            unknown = sorted(set(self.trajectory_decomposition) - set(names))
            if unknown:
                raise ConfigError(f"sweep spec: trajectory_decomposition names runs that are not in the grid: {unknown}; "
                                  f"the grid's runs are {sorted(names)}")
        return found
