"""Training: a small loop around one iteration, with batches, logging, checkpoints, snapshots and threads.

    trainer = Trainer(TrainConfig.from_preset("cpu"), "runs/my_run")   # FactorVAE, the library's Algorithm 2
    trainer.run()

    Trainer(config, "runs/mine", step=my_factor_vae_step).run()          # your own step, the same loop

The loop knows nothing of the method: :data:`fvae_lib.algorithm.METHODS` says what a model's step takes
(networks, optimisers, batches, hyperparameters) and returns, and the step does all of the method's work
(:func:`~fvae_lib.algorithm.factor_vae_step`, :func:`~fvae_lib.algorithm.beta_vae_step`, or yours). The run
folder's files are read and written by :class:`fvae_lib.runs.RunFolder`; the config and presets are in
:mod:`fvae_lib.config`.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from typing import Callable

import torch

from .algorithm import METHODS
from .config import ConfigError, TrainConfig, resolve_device, resolve_fast_path
from .data import BatchSampler, DSprites
from .models import VAE, Discriminator
from .runs import CHECKPOINT_FORMAT, RunFolder
from .threads import ThreadPolicy


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the message names the step and the term."""


class Trainer:
    """Trains one run in a run folder, resumable at any checkpoint.

    Args:
        config: the run's TrainConfig (ignored fields aside, it must equal the folder's when resuming).
        out_dir: the run folder.
        resume: continue the run in ``out_dir`` from its last checkpoint.
        data: a dataset to train on (default: dSprites as the config says).
        progress: show a tqdm progress bar.
        step: one iteration, with the signature of the model's step in :data:`fvae_lib.algorithm.METHODS`
            (``factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast)`` or
            ``beta_vae_step(vae, opt_vae, x, beta, noise, autocast)``); default: the library's. It returns the
            model's terms (``FactorVAETerms``, ``BetaVAETerms``) or a dict of them.

    The trainer holds the run folder (:class:`fvae_lib.storage.FolderLock`) from its first look at it to the end
    of :meth:`run` (or :meth:`close`): another process that tries to write there is refused, naming this one.
    """

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike, resume: bool = False,
                 data: DSprites | None = None, progress: bool = True, step: Callable | None = None):
        config.validate()
        self.folder = RunFolder(out_dir)
        self.out = self.folder.path
        self.lock = self.folder.lock(what="training run")
        created = not self.out.exists()
        self.lock.acquire()
        try:
            self._check_folder(config, resume)
            self._setup(config, data, progress, step)
            if resume and self.folder.has_checkpoint():
                self.load_checkpoint()
            if resume:  # rows logged after the checkpoint (or all of them, before the first save) come again
                self.folder.truncate_history(self.step)
            else:
                self.folder.write_config(config)
        except BaseException:
            self.lock.release()
            if created:  # a refused config leaves no folder behind
                self.lock.path.unlink(missing_ok=True)
                try:
                    self.out.rmdir()
                except OSError:
                    pass
            raise
        self._holding = True

    def _check_folder(self, config: TrainConfig, resume: bool) -> None:
        if self.folder.exists():
            saved = self.folder.read_config()
            if not resume:
                raise ConfigError(f"{self.out} already holds a {saved.model} run (preset {saved.preset}); "
                                  "pass --resume to continue it, or choose another --out")
            diff = config.defining_differences(saved)
            if diff:
                raise ConfigError(
                    f"--resume with settings that differ from the run in {self.out}: "
                    + ", ".join(f"{k}={getattr(config, k)!r} (run has {getattr(saved, k)!r})" for k in sorted(diff)))
        elif resume:
            raise ConfigError(f"nothing to resume in {self.out}: it has no {RunFolder.CONFIG}")

    def _setup(self, config: TrainConfig, data, progress: bool, step: Callable | None) -> None:
        self.config = config
        self.method = METHODS[config.model]
        self.step_fn = step if step is not None else self.method.step
        self.device = resolve_device(config.device)
        self.precision, self.channels_last = resolve_fast_path(config, self.device)
        self.data = data if data is not None else DSprites(source=config.data_source, steps=config.data_steps, progress=progress)
        if config.batch_size > len(self.data):
            raise ConfigError(f"batch_size {config.batch_size} is larger than the dataset ({len(self.data)} images)")
        self.progress = progress
        self._build_networks()
        self.sampler = BatchSampler(self.data, config.batch_size, self.device, seed=config.seed)
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(config.seed + 1_000_003)
        self.step = 0
        self.elapsed_s = 0.0  # training wall time over all sessions of this run
        self.terms = self.method.terms.names()
        self.thread_policy: ThreadPolicy | None = None  # set by run() on a CPU
        self.event: str | None = None  # said in the next history row

    def _build_networks(self) -> None:
        config = self.config
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.vae = VAE(config.z_dim, channels=self.data.num_channels).to(self.device)
            self.disc = Discriminator(config.z_dim, hidden_layers=config.d_hidden_layers).to(self.device) \
                if self.method.discriminator else None
        if self.channels_last:
            self.vae = self.vae.to(memory_format=torch.channels_last)
        # fused Adam: one kernel over all parameters instead of a dozen small ops per tensor; the same update rule
        self.opt_vae = torch.optim.Adam(self.vae.parameters(), lr=config.lr_vae, betas=config.betas_vae, fused=True)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.lr_d, betas=config.betas_d, fused=True) if self.disc else None
        if config.compile != "off":  # each network's forward (state_dict keys are untouched); "reduce-overhead":
            for net in (self.vae.encoder, self.vae.decoder, self.disc):  # CUDA graphs on a GPU
                if net is not None:
                    net.forward = torch.compile(net.forward, mode=None if config.compile == "default" else config.compile)

    # -- one iteration ------------------------------------------------------------------------

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _batch(self) -> torch.Tensor:
        x = self.sampler.sample()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def step_arguments(self) -> tuple:
        """What one call of the step takes: networks, optimisers, fresh batches, hyperparameters, noise, autocast."""
        networks = (self.vae, self.disc) if self.disc is not None else (self.vae,)
        optimisers = (self.opt_vae, self.opt_d) if self.disc is not None else (self.opt_vae,)
        batches = tuple(self._batch() for _ in range(self.method.batches))  # independent minibatches
        hyper = tuple(getattr(self.config, name) for name in self.method.hyperparameters)
        return (*networks, *optimisers, *batches, *hyper, self.noise, self._autocast)

    def train_step(self):
        """One iteration; returns its named terms, tensors on the device (no host sync)."""
        self.vae.train()
        terms = self.step_fn(*self.step_arguments())
        if isinstance(terms, dict):  # a step of one's own may return its terms by name
            wanted = set(self.method.terms.names()) | {"kl_per_dim"}
            if set(terms) != wanted:
                raise TypeError(f"the step returned terms {sorted(terms)}; a {self.config.model} step returns "
                                f"{sorted(wanted)} (missing: {sorted(wanted - set(terms))}, unknown: {sorted(set(terms) - wanted)})")
            terms = self.method.terms(**{k: torch.as_tensor(v, device=self.device).detach().float() for k, v in terms.items()})
        self.step += 1
        return terms

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> list[dict]:
        """Train until ``config.iterations``; returns the history rows logged by this call."""
        from tqdm.auto import tqdm

        # CPU threads: the cores no other process is using, re-checked as training goes (fvae_lib.threads)
        self.thread_policy = ThreadPolicy(self.config.threads) if self.device.type == "cpu" else None
        with self.lock:  # held while this process writes the folder (already, from __init__, on a first run)
            if self.thread_policy:
                self.thread_policy.start()
            try:
                return self._run_loop(tqdm)
            finally:
                if self.thread_policy:
                    self.thread_policy.stop()
                self.close()

    def close(self) -> None:
        """Let go of the run folder (run() does at its end): another process may then resume it. Saving a
        checkpoint or calling run() again takes it back."""
        if getattr(self, "_holding", False):
            self._holding = False
            self.lock.release()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- at interpreter exit the lock's modules may be gone; the kernel drops the flock
            pass

    def _run_loop(self, tqdm) -> list[dict]:
        cfg = self.config
        rows: list[dict] = []
        window = torch.zeros(cfg.log_every, len(self.terms) + cfg.z_dim, device=self.device)
        t0 = time.perf_counter()
        t_window, last_save = t0, time.monotonic()
        window_start, elapsed_before = self.step, self.elapsed_s
        with tqdm(total=cfg.iterations, initial=self.step, disable=not self.progress, desc=f"{cfg.model} {cfg.preset}",
                  unit="it", dynamic_ncols=True) as bar:
            while self.step < cfg.iterations:
                slot = self.step - window_start  # before the step: train_step() advances self.step
                window[slot] = self.train_step().as_row().detach()  # a step of one's own may not detach its terms
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
            ckpt = self.folder / RunFolder.CHECKPOINT
            kept = f"the last good checkpoint ({ckpt}) is kept" if ckpt.exists() else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"the {names[j]} term became {values[i, j].item()} at step {window_start + i + 1}; training stopped and "
                f"{kept}. Try a lower learning rate or a smaller gamma/beta."
            )
        means = values.double().mean(0).tolist()
        n = len(values)
        row = {"step": self.step, **dict(zip(self.terms, means[: len(self.terms)])),
               "kl_dims": means[len(self.terms):], "it_per_s": n / max(seconds, 1e-9), "elapsed_s": self.elapsed_s}
        if self.event:  # something the history should say about this window (a change of device, say)
            row["event"], self.event = self.event, None
        if self.thread_policy:  # the count the window's steps used (and each count's steps, if it changed)
            row.update(self.thread_policy.window_threads(), threads_max=self.thread_policy.ceiling)
        self.folder.append_history(row)
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
            "rng_device": self.device.type,  # generator states are per device type: see _restore_generators
        }
        if self.disc is not None:
            state["disc"] = self.disc.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        return state

    def save_checkpoint(self):
        """checkpoint.pt, atomically, the previous one kept (:meth:`fvae_lib.runs.RunFolder.save_checkpoint`)."""
        with self.lock:
            return self.folder.save_checkpoint(self.state_dict())

    def save_snapshot(self):
        """The VAE's weights at this step, in snapshots/ (for metrics over training)."""
        return self.folder.save_snapshot(self.step, self.vae.state_dict())

    def load_checkpoint(self) -> None:
        state = self.folder.load_checkpoint()
        if state["config"]["model"] != self.config.model:
            raise ConfigError(f"checkpoint in {self.out} is a {state['config']['model']} run")
        self.vae.load_state_dict(state["vae"])
        self.opt_vae.load_state_dict(state["opt_vae"])
        if self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self._restore_generators(state)

    def _restore_generators(self, state: dict) -> None:
        """The batch sampler's and the noise's generators, as saved, where the device type is the same.

        A CPU generator's state (Mersenne Twister, 5,056 bytes) cannot be loaded into a CUDA one (Philox, 16 bytes)
        nor the other way round, and the two draw different numbers anyway. So a run resumed on another device
        type (a Colab runtime switched from CPU to GPU with ``device="auto"``) continues with both generators
        seeded afresh from the run's seed and the step: deterministic, but not the batches an uninterrupted run on
        one device would have drawn. It says so, on stderr and in the next history row (``event``).
        """
        saved_on = state.get("rng_device") or ("cpu" if state["noise"].numel() > 16 else "cuda")  # older checkpoints
        if saved_on == self.device.type:
            self.sampler.load_state_dict(state["sampler"])
            self.noise.set_state(state["noise"])
            return
        self.sampler.generator.manual_seed(self.config.seed * 1_000_033 + self.step)
        self.noise.manual_seed(self.config.seed + 1_000_003 + self.step * 7_919)
        self.event = (f"resumed on {self.device.type} at step {self.step} from a checkpoint saved on {saved_on}: batches and "
                      "noise are drawn anew from the seed and the step (the rest of the state is as saved); the run goes "
                      "on, but is not bit-identical to one trained on a single device")
        print(f"note: {self.event}", file=sys.stderr)
