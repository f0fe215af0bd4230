"""What defines a training run: the config, its presets, and the choices that follow from the device.

    TrainConfig.from_preset("cpu", model="factorvae", gamma=35.0)   # a preset, with overrides
    TrainConfig()                                                   # the paper's settings

The dataclass defaults are the paper's settings; a preset names only what it changes from them.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch

from .data import grid_sizes
from .device import default_device


class ConfigError(ValueError):
    """A training configuration that is refused before any work is done."""


SMOKE_GRID = {"orientation": 4, "posX": 4, "posY": 4}  # 3 x 6 x 10 x 8 x 8 = 11,520 images

PRESETS: dict[str, dict] = {
    # The paper: the TrainConfig defaults themselves (batch 64, 3e5 iterations, each one VAE update and one
    # discriminator update, full grid), so the two can never disagree.
    "paper": dict(),
    # Minutes on a GPU (the default there: a Colab T4 or a workstation), a fifteenth of the paper's iterations
    # (the notebooks print the time measured on their device before training).
    "gpu": dict(batch_size=64, iterations=20_000, log_every=100, checkpoint_every=2_000, snapshot_every=2_000),
    # A few minutes on a 2-core CPU: enough for shapes and positions to appear in reconstructions.
    "cpu": dict(batch_size=64, iterations=2_000, log_every=50, checkpoint_every=500, snapshot_every=500),
    # Seconds on a CPU, for tests and notebooks under test: a reduced grid and a few dozen steps.
    "smoke": dict(batch_size=32, iterations=40, log_every=10, checkpoint_every=20, snapshot_every=20, data_steps=SMOKE_GRID),
}

MODELS = ("factorvae", "betavae")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
DEFAULT_GAMMA = 35.0
DEFAULT_BETA = {"factorvae": 1.0, "betavae": 4.0}


# what each annotation of TrainConfig accepts (an int where a float is asked for; never a bool for a number)
FIELD_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "tuple[float, float]": (tuple, list),
               "dict | None": (dict, type(None)), "bool | None": (bool, type(None))}


@dataclass
class TrainConfig:
    """Everything that defines a run. Build one with :meth:`from_preset`; the defaults are the paper's settings.

    gamma: FactorVAE's TC weight. Default 35: recalled as the γ of the paper's best dSprites model
        (FactorVAE 0.889 against β-VAE 0.814 at β = 4; a recollection, not confirmed from the paper's
        figures), inside the 35-40 band that public reimplementations use.
    beta: the KL weight; 1 for FactorVAE (the paper's objective), 4 for the β-VAE baseline.
    """

    model: str = "factorvae"
    preset: str = "paper"
    gamma: float = DEFAULT_GAMMA
    beta: float = 1.0
    z_dim: int = 10
    batch_size: int = 64
    iterations: int = 300_000
    lr_vae: float = 1e-4
    betas_vae: tuple[float, float] = (0.9, 0.999)
    lr_d: float = 1e-4
    betas_d: tuple[float, float] = (0.5, 0.9)
    d_hidden_layers: int = 6
    seed: int = 0
    log_every: int = 200
    checkpoint_every: int = 10_000
    checkpoint_minutes: float = 10.0
    snapshot_every: int = 25_000  # also keep the VAE's weights every N steps in snapshots/ (0: never)
    data_source: str = "auto"
    data_steps: dict | None = None
    device: str = "auto"
    precision: str = "auto"  # "fp32", "bf16" (autocast) or "auto": the fast path where it is measured to pay
    channels_last: bool | None = None  # None: the device's choice (channels_last on a CPU)
    compile: str = "off"  # torch.compile of the networks: off, default, reduce-overhead (CUDA graphs), max-autotune
    threads: int = 0  # CPU threads: 0 adapts to the machine's load (fvae_lib.threads); N pins N threads

    @classmethod
    def from_preset(cls, preset: str | None = None, model: str = "factorvae", device: str = "auto", **overrides) -> "TrainConfig":
        """A config from a named preset; ``preset=None`` picks ``gpu`` on a GPU and ``cpu`` elsewhere.

        The paper's scale (3e5 iterations: hours) is always an explicit choice, ``preset="paper"``.
        """
        if preset is None:  # the device decides the preset: only then is it resolved here (a GPU sweep is
            preset = default_preset(resolve_device(device))  # specified on a login node that has none)
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        if model not in MODELS:
            raise ConfigError(f"unknown model {model!r}; choose one of {MODELS}")
        # the paper's settings (the defaults), what the preset changes, then the caller's overrides
        values = dict(PRESETS[preset], model=model, preset=preset, device=device, beta=DEFAULT_BETA[model])
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"config has unknown fields {sorted(unknown)}")
        d = dict(d)
        if isinstance(d.get("compile"), bool):  # run folders written before compile took a mode name
            d["compile"] = "default" if d["compile"] else "off"
        for key in ("betas_vae", "betas_d"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        config = cls(**d)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # fields that may change when a run is resumed; the rest define the run
    RESUMABLE_CHANGES = frozenset({"iterations", "checkpoint_every", "checkpoint_minutes", "device", "log_every", "snapshot_every",
                                   "threads"})

    def defining_differences(self, other: "TrainConfig") -> set[str]:
        """Fields that define a run and differ between two configs (resumable settings aside)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k for k in mine if mine[k] != theirs[k]} - self.RESUMABLE_CHANGES

    def dataset_size(self) -> int:
        return math.prod(grid_sizes(self.data_steps))

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        for f in dataclasses.fields(self):  # the type first, so that a "5000" from a file is refused, not compared
            value, kinds = getattr(self, f.name), FIELD_TYPES[str(f.type)]
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if ok and f.type == "tuple[float, float]":
                ok = len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            need(ok, f"{f.name} must be {f.type}, got {value!r} ({type(value).__name__})")

        need(self.model in MODELS, f"unknown model {self.model!r}; choose one of {MODELS}")
        need(self.preset in PRESETS, f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        need(math.isfinite(self.gamma) and self.gamma >= 0, f"gamma must be a finite number >= 0, got {self.gamma}")
        need(math.isfinite(self.beta) and self.beta >= 0, f"beta must be a finite number >= 0, got {self.beta}")
        need(self.z_dim >= 1, f"z_dim must be >= 1, got {self.z_dim}")
        need(self.batch_size >= 2, f"batch_size must be >= 2 (the permutation needs a batch), got {self.batch_size}")
        need(self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}")
        need(self.lr_vae > 0 and self.lr_d > 0, "learning rates must be > 0")
        need(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        need(self.checkpoint_every >= 1 and self.checkpoint_every % self.log_every == 0,
             f"checkpoint_every ({self.checkpoint_every}) must be a positive multiple of log_every ({self.log_every})")
        need(self.checkpoint_minutes > 0, "checkpoint_minutes must be > 0")
        need(self.snapshot_every >= 0, f"snapshot_every must be >= 0, got {self.snapshot_every}")
        need(self.threads >= 0, f"threads must be 0 (adapt to the machine's load) or a positive count, got {self.threads}")
        need(self.compile in COMPILE_MODES, f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        need(self.precision in ("auto", "fp32", "bf16"), f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        need(self.data_source in ("auto", "real", "replica"), f"data_source must be auto, real or replica, got {self.data_source!r}")
        try:
            size = self.dataset_size()
        except ValueError as err:
            raise ConfigError(f"data_steps: {err}") from None
        need(self.batch_size <= size, f"batch_size {self.batch_size} is larger than the dataset ({size} images)")


def default_preset(device: torch.device) -> str:
    """The preset a device gets when none is named: minutes, never hours (``paper`` is asked for by name)."""
    return "gpu" if device.type == "cuda" else "cpu"


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX); elsewhere bf16 is emulated.

    A cap on oneDNN's instruction set (``ONEDNN_MAX_CPU_ISA``, or the older ``DNNL_MAX_CPU_ISA``) below bf16, e.g.
    ``AVX2`` to measure how an AVX2-only CPU trains, makes oneDNN emulate bf16 too: then this is False."""
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().lower()
    if isa and isa != "all" and not any(kind in isa for kind in ("bf16", "amx", "avx10")):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_fast_path(config: "TrainConfig", device: torch.device) -> tuple[str, bool]:
    """(precision, channels_last) for a config on a device.

    "auto" on a CPU with native bf16 is bf16 autocast (encoder and decoder): faster than fp32, with training
    curves within run-to-run noise (both measured in benchmarks/README.md). Elsewhere fp32: emulated bf16 is
    slower, and on GPUs the options are not measured yet. On every CPU the convolutions run channels_last
    (oneDNN's NHWC kernels), in fp32 as in bf16: measured faster on AVX-512 and on AVX2, with curves within
    run-to-run noise (benchmarks/README.md). Either can be set explicitly.
    """
    fast = device.type == "cpu" and cpu_has_native_bf16()
    precision = config.precision if config.precision != "auto" else ("bf16" if fast else "fp32")
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cpu"
    return precision, channels_last


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> :func:`fvae_lib.device.default_device`; anything else as given, refusing (:class:`ConfigError`)
    a name torch does not know and a GPU that is not there."""
    if str(device) == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"unknown device {device!r} ({err}); use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no GPU is available; use --device cpu")
    return dev
