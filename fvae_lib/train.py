"""Training: the config and its presets, the β-VAE and FactorVAE steps (Algorithm 2), the loop,
checkpoints and history.

A run folder holds:
    config.json          the TrainConfig, written before the first step
    checkpoint.pt        everything needed to resume bit for bit (tensors and plain values only:
                         ``torch.load(path, weights_only=True)`` opens it); checkpoint-prev.pt is the one before
    history.jsonl        one JSON object per logged step: window means of every loss term, the KL of
                         every latent dimension, throughput and elapsed time
    *.png                figures written at the end of the run
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import BatchSampler, DSprites, atomic_write_bytes, grid_sizes, write_temporary
from .algorithm import BetaVAETerms, FactorVAETerms, beta_vae_step, factor_vae_step
from .models import VAE, Discriminator
from .threads import ThreadPolicy

CHECKPOINT_FORMAT = 1


class ConfigError(ValueError):
    """A training configuration that is refused before any work is done."""


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the message names the step and the term."""


# --------------------------------------------------------------------------------------------------
# Config and presets
# --------------------------------------------------------------------------------------------------

SMOKE_GRID = {"orientation": 4, "posX": 4, "posY": 4}  # 3 x 6 x 10 x 8 x 8 = 11,520 images

PRESETS: dict[str, dict] = {
    # The paper: batch 64, 3e5 iterations (each one VAE update and one discriminator update), full grid.
    "paper": dict(batch_size=64, iterations=300_000, log_every=200, checkpoint_every=10_000, snapshot_every=25_000),
    # Minutes on a GPU (the default there: a Colab T4 or a workstation), a fifteenth of the paper's iterations:
    # at 12.2 GFLOP per FactorVAE iteration, 20,000 iterations are about 2 minutes at a sustained 2 TFLOP/s
    # (an estimate, not a measurement; notebooks print one measured on their device before training).
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


@dataclass
class TrainConfig:
    """Everything that defines a run. Build one with :meth:`from_preset`.

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
    snapshot_every: int = 0  # also keep the VAE's weights every N steps in snapshots/ (0: never)
    data_source: str = "auto"
    data_steps: dict | None = None
    device: str = "auto"
    precision: str = "auto"  # "fp32", "bf16" (autocast) or "auto": the fast path where it is measured to pay
    channels_last: bool | None = None  # None: the fast path's choice for the device
    compile: str = "off"  # torch.compile of the networks: off, default, reduce-overhead (CUDA graphs), max-autotune
    threads: int = 0  # CPU threads: 0 adapts to the machine's load (fvae_lib.threads); N pins N threads

    @classmethod
    def from_preset(cls, preset: str | None = None, model: str = "factorvae", device: str = "auto", **overrides) -> "TrainConfig":
        """A config from a named preset; ``preset=None`` picks ``gpu`` on a GPU and ``cpu`` elsewhere.

        The paper's scale (3e5 iterations: hours) is always an explicit choice, ``preset="paper"``.
        """
        resolved = resolve_device(device)
        if preset is None:
            preset = default_preset(resolved)
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        if model not in MODELS:
            raise ConfigError(f"unknown model {model!r}; choose one of {MODELS}")
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
        for key in ("betas_vae", "betas_d"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

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
    """True where the CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX); elsewhere bf16 is emulated."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_fast_path(config: "TrainConfig", device: torch.device) -> tuple[str, bool]:
    """(precision, channels_last) for a config on a device.

    "auto" on a CPU with native bf16 is bf16 autocast (encoder and decoder) + channels_last: faster than
    fp32, with training curves within run-to-run noise (both measured in benchmarks/README.md). Elsewhere fp32: emulated bf16 is slower, and on GPUs the options are not
    measured yet.
    """
    fast = device.type == "cpu" and cpu_has_native_bf16()
    precision = config.precision if config.precision != "auto" else ("bf16" if fast else "fp32")
    channels_last = config.channels_last if config.channels_last is not None else (device.type == "cpu" and fast)
    return precision, channels_last


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no GPU is available; use --device cpu")
    return dev


# --------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------


class Trainer:
    """Runs β-VAE or FactorVAE training in a run folder, resumable at any checkpoint.

    Args:
        config: the run's TrainConfig (ignored fields aside, it must equal the folder's when resuming).
        out_dir: the run folder.
        resume: continue the run in ``out_dir`` from its last checkpoint.
        data: a dataset to train on (default: dSprites as the config says).
        progress: show a tqdm progress bar.
    """

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike, resume: bool = False,
                 data: DSprites | None = None, progress: bool = True):
        config.validate()
        self.out = Path(out_dir)
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            saved = read_config(self.out)
            if not resume:
                raise ConfigError(
                    f"{self.out} already holds a {saved.model} run (preset {saved.preset}); "
                    "pass --resume to continue it, or choose another --out"
                )
            diff = config.defining_differences(saved)
            if diff:
                raise ConfigError(
                    f"--resume with settings that differ from the run in {self.out}: "
                    + ", ".join(f"{k}={getattr(config, k)!r} (run has {getattr(saved, k)!r})" for k in sorted(diff))
                )
        elif resume:
            raise ConfigError(f"nothing to resume in {self.out}: it has no config.json")

        self.config = config
        self.device = resolve_device(config.device)
        self.precision, self.channels_last = resolve_fast_path(config, self.device)
        self.data = data if data is not None else DSprites(source=config.data_source, steps=config.data_steps, progress=progress)
        if config.batch_size > len(self.data):
            raise ConfigError(f"batch_size {config.batch_size} is larger than the dataset ({len(self.data)} images)")
        self.progress = progress

        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.vae = VAE(config.z_dim, channels=self.data.num_channels).to(self.device)
            self.disc = Discriminator(config.z_dim, hidden_layers=config.d_hidden_layers).to(self.device) if config.model == "factorvae" else None
        if self.channels_last:
            self.vae = self.vae.to(memory_format=torch.channels_last)
        # fused Adam: one kernel over all parameters instead of a dozen small ops per tensor (3x less
        # optimiser time on a CPU); the same update rule
        adam = dict(fused=True)
        self.opt_vae = torch.optim.Adam(self.vae.parameters(), lr=config.lr_vae, betas=config.betas_vae, **adam)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.lr_d, betas=config.betas_d, **adam) if self.disc else None
        self.sampler = BatchSampler(self.data, config.batch_size, self.device, seed=config.seed)
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(config.seed + 1_000_003)
        self.step = 0
        self.elapsed_s = 0.0  # training wall time over all sessions of this run
        self.terms = term_names(config)
        self.thread_policy: ThreadPolicy | None = None  # set by run() on a CPU
        self._step_fn = self._step_factorvae if config.model == "factorvae" else self._step_betavae
        if config.compile != "off":
            # compile each network's forward (state_dict keys are untouched); "reduce-overhead" captures
            # CUDA graphs on a GPU. On a CPU it did not pay (benchmarks/README.md).
            for net in (self.vae.encoder, self.vae.decoder, self.disc):
                if net is not None:
                    net.forward = torch.compile(net.forward, mode=None if config.compile == "default" else config.compile)

        if resume and has_checkpoint(self.out):
            self.load_checkpoint()
            _truncate_history(self.out / "history.jsonl", self.step)
        elif resume:  # the run was stopped before its first save: start it again from step 0
            _truncate_history(self.out / "history.jsonl", 0)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cfg_path, json.dumps(config.to_dict(), indent=1).encode())

    # -- one iteration ------------------------------------------------------------------------

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _batch(self) -> torch.Tensor:
        x = self.sampler.sample()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _step_betavae(self) -> BetaVAETerms:
        return beta_vae_step(self.vae, self.opt_vae, self._batch(), self.config.beta, self.noise, self._autocast)

    def _step_factorvae(self) -> FactorVAETerms:
        x1, x2 = self._batch(), self._batch()  # two independent minibatches
        return factor_vae_step(self.vae, self.disc, self.opt_vae, self.opt_d, x1, x2, self.config.gamma,
                               self.config.beta, self.noise, self._autocast)

    def train_step(self) -> BetaVAETerms | FactorVAETerms:
        """One iteration (:mod:`fvae_lib.algorithm`); returns its named terms, tensors on the device (no host sync)."""
        self.vae.train()
        terms = self._step_fn()
        self.step += 1
        return terms

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> list[dict]:
        """Train until ``config.iterations``; returns the history rows logged by this call."""
        from tqdm.auto import tqdm

        rows: list[dict] = []
        # CPU threads: the cores no other process is using, re-checked as training goes (fvae_lib.threads)
        self.thread_policy = ThreadPolicy(self.config.threads) if self.device.type == "cpu" else None
        if self.thread_policy:
            self.thread_policy.start()
        try:
            return self._run_loop(tqdm, rows)
        finally:
            if self.thread_policy:
                self.thread_policy.stop()

    def _run_loop(self, tqdm, rows: list[dict]) -> list[dict]:
        cfg = self.config
        width = len(self.terms) + cfg.z_dim
        window = torch.zeros(cfg.log_every, width, device=self.device)
        t0 = time.perf_counter()
        t_window, last_save = t0, time.monotonic()
        window_start, elapsed_before = self.step, self.elapsed_s
        with tqdm(total=cfg.iterations, initial=self.step, disable=not self.progress, desc=f"{cfg.model} {cfg.preset}",
                  unit="it", dynamic_ncols=True) as bar:
            while self.step < cfg.iterations:
                slot = self.step - window_start
                window[slot] = self.train_step().as_row()
                if self.thread_policy:
                    self.thread_policy.after_step()
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    self.save_snapshot()
                if self.step % cfg.log_every and self.step != cfg.iterations:
                    continue
                now = time.perf_counter()
                self.elapsed_s = elapsed_before + now - t0
                row = self._log_window(window[: self.step - window_start], window_start, now - t_window)
                rows.append(row)
                bar.update(self.step - window_start)
                bar.set_postfix({k: f"{row[k]:.3g}" for k in self.terms if k != "loss"}, refresh=False)
                window_start, t_window = self.step, now
                due_by_time = time.monotonic() - last_save >= cfg.checkpoint_minutes * 60
                if self.step % cfg.checkpoint_every == 0 or due_by_time or self.step == cfg.iterations:
                    self.save_checkpoint()
                    last_save = time.monotonic()
        return rows

    def _log_window(self, values: torch.Tensor, window_start: int, seconds: float) -> dict:
        values = values.cpu()  # the one host sync of a window
        finite = torch.isfinite(values)
        if not finite.all():
            i, j = map(int, (~finite).nonzero()[0])
            names = self.terms + [f"kl_z{k}" for k in range(self.config.z_dim)]
            ckpt = self.out / "checkpoint.pt"
            kept = f"the last good checkpoint ({ckpt}) is kept" if ckpt.exists() else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"the {names[j]} term became {values[i, j].item()} at step {window_start + i + 1}; training stopped and "
                f"{kept}. Try a lower learning rate or a smaller gamma/beta."
            )
        means = values.double().mean(0).tolist()
        n = len(values)
        row = {"step": self.step, **dict(zip(self.terms, means[: len(self.terms)])),
               "kl_dims": means[len(self.terms):], "it_per_s": n / max(seconds, 1e-9), "elapsed_s": self.elapsed_s}
        if self.thread_policy:
            row["threads"] = self.thread_policy.threads
        with open(self.out / "history.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    # -- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "config": self.config.to_dict(),
            "vae": self.vae.state_dict(),
            "opt_vae": self.opt_vae.state_dict(),
            "sampler": self.sampler.state_dict(),
            "noise": self.noise.get_state(),
        }
        if self.disc is not None:
            state["disc"] = self.disc.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        return state

    def save_checkpoint(self) -> Path:
        """Write checkpoint.pt atomically; the previous one becomes checkpoint-prev.pt only once the new is whole."""
        path = self.out / "checkpoint.pt"
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        tmp = write_temporary(path, buf.getbuffer())
        if path.exists():
            os.replace(path, self.out / "checkpoint-prev.pt")
        os.replace(tmp, path)
        return path

    def save_snapshot(self) -> Path:
        """The VAE's weights at this step, in snapshots/step_NNNNNNN.pt (for metrics over training)."""
        path = self.out / "snapshots" / f"step_{self.step:07d}.pt"
        path.parent.mkdir(exist_ok=True)
        buf = io.BytesIO()
        torch.save({"step": self.step, "vae": self.vae.state_dict()}, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def load_checkpoint(self) -> None:
        state = load_checkpoint(self.out)
        if state["config"]["model"] != self.config.model:
            raise ConfigError(f"checkpoint in {self.out} is a {state['config']['model']} run")
        self.vae.load_state_dict(state["vae"])
        self.opt_vae.load_state_dict(state["opt_vae"])
        if self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.load_state_dict(state["sampler"])
        self.noise.set_state(state["noise"])
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))


def read_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig saved in a run folder's config.json."""
    path = Path(run_dir) / "config.json"
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path} is not a readable run config ({err})") from None


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    return any((Path(run_dir) / name).exists() for name in ("checkpoint.pt", "checkpoint-prev.pt"))


def term_names(config: TrainConfig) -> list[str]:
    """The scalar terms a run of this model logs, in order (the per-latent KL follows them)."""
    return (FactorVAETerms if config.model == "factorvae" else BetaVAETerms).names()


def load_checkpoint(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The newest whole checkpoint of a run: checkpoint.pt, else checkpoint-prev.pt.

    Opened with ``weights_only=True``: a checkpoint holds tensors and plain values only.
    """
    run_dir = Path(run_dir)
    errors = []
    for name in ("checkpoint.pt", "checkpoint-prev.pt"):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # noqa: BLE001 -- a damaged file: fall back to the previous one
            # torch's own message goes on to suggest weights_only=False, which is wrong advice for a file
            # that is damaged: keep only its first line
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            errors.append(f"{path.name} is damaged or incomplete ({first})")
            continue
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            errors.append(f"{path.name} is not a checkpoint of this version (format {found}, expected {CHECKPOINT_FORMAT})")
            continue
        return state
    if not errors:
        raise ConfigError(f"no checkpoint in {run_dir}: the run was stopped before its first save")
    raise ConfigError(
        f"no loadable checkpoint in {run_dir}: " + "; ".join(errors) + ". The damaged files, config.json and "
        "history.jsonl are left as they are; train again into a new --out, or put back a copy of a checkpoint."
    )


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of history.jsonl (a last line cut short by a kill is skipped)."""
    path = Path(run_dir) / "history.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _truncate_history(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from; they will be logged again."""
    if path.exists():
        kept = [json.dumps(r) + "\n" for r in read_history(path.parent) if r["step"] <= step]
        atomic_write_bytes(path, "".join(kept).encode())


def vae_for_state(state: dict) -> VAE:
    """An untrained VAE with the shape of a saved state dict: latents, channels (1 for dSprites, 3 for colour
    data) and hidden width (128, or 256 in the paper's colour variant) are read off the weights."""
    z_dim = state["decoder.fc.0.weight"].shape[1]
    return VAE(z_dim, channels=state["encoder.convs.0.weight"].shape[1], hidden=state["encoder.fc.1.weight"].shape[0])


def load_snapshots(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> list[tuple[int, VAE]]:
    """(step, VAE in eval mode) for every snapshot of a run, in step order."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir} is not a run folder (no config.json)")
    out = []
    for path in sorted((run_dir / "snapshots").glob("step_*.pt")):
        state = torch.load(path, map_location=device, weights_only=True)
        vae = vae_for_state(state["vae"]).to(device)
        vae.load_state_dict(state["vae"])
        out.append((int(state["step"]), vae.eval()))
    return out


def load_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[VAE, TrainConfig]:
    """The trained VAE of a run folder (in eval mode) and its config."""
    state = load_checkpoint(run_dir, map_location=device)
    config = TrainConfig.from_dict(state["config"])
    vae = vae_for_state(state["vae"]).to(device)
    vae.load_state_dict(state["vae"])
    return vae.eval(), config
