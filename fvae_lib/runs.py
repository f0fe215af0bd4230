"""The run folder: its format, read and written in one place (:class:`RunFolder`).

A run folder holds:
    config.json          the TrainConfig, written before the first step
    checkpoint.pt        everything needed to resume bit for bit (tensors and plain values only:
                         ``torch.load(path, weights_only=True)`` opens it); checkpoint-prev.pt is the one before
    history.jsonl        one JSON object per logged step: window means of every loss term, the KL of
                         every latent dimension, throughput, threads and elapsed time
    snapshots/           the VAE's weights every ``snapshot_every`` steps (step_0001000.pt, ...)
    metrics.json         the scores of the trained encoder (:func:`fvae_lib.evaluate.evaluate_run`)
    trajectory.json      the FactorVAE metric (and KL decomposition) of the snapshots, for a sweep
    sweep.log            what a sweep's task printed
    .lock                held while a process writes here (:class:`fvae_lib.storage.FolderLock`)
    *.png                figures

Every file but the two logs is written atomically (a temporary, then a rename): a kill never leaves half a file;
history.jsonl and sweep.log are appended, and a line a kill cut short is skipped when read. The trainer
(:mod:`fvae_lib.train`) writes the training files through here; evaluation, sweeps, the engines, the notebooks
and the command line read and write the rest through here too (the lock's own file name is
:class:`fvae_lib.storage.FolderLock`'s).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from .config import ConfigError, TrainConfig
from .models import VAE
from .storage import FolderLock, atomic_write_bytes, replace, write_temporary

CHECKPOINT_FORMAT = 1


class RunFolder:
    """One run folder: ``RunFolder("runs/cpu/factorvae_g35")``. Paths are attributes; reading and writing are methods."""

    CONFIG, CHECKPOINT, PREVIOUS, HISTORY = "config.json", "checkpoint.pt", "checkpoint-prev.pt", "history.jsonl"
    SNAPSHOTS, METRICS, TRAJECTORY, LOG = "snapshots", "metrics.json", "trajectory.json", "sweep.log"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- what is there ----------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether a run was started here (its config is written before the first step)."""
        return (self.path / self.CONFIG).exists()

    def lock(self, what: str = "run") -> FolderLock:
        return FolderLock(self.path, what=what)

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    def figure(self, name: str) -> Path:
        """Where the figure ``name`` goes: ``<run>/<name>.png``."""
        return self.path / f"{name}.png"

    def figures(self) -> list[str]:
        return sorted(p.name for p in self.path.glob("*.png"))

    # -- config ------------------------------------------------------------------------------------

    def read_config(self) -> TrainConfig:
        """The TrainConfig saved in config.json."""
        path = self.path / self.CONFIG
        try:
            return TrainConfig.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{path} is not a readable run config ({err})") from None

    def write_config(self, config: TrainConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path / self.CONFIG, json.dumps(config.to_dict(), indent=1).encode())

    # -- checkpoints -------------------------------------------------------------------------------

    def has_checkpoint(self) -> bool:
        return any((self.path / name).exists() for name in (self.CHECKPOINT, self.PREVIOUS))

    def save_checkpoint(self, state: dict) -> Path:
        """Write checkpoint.pt atomically; the one before becomes checkpoint-prev.pt only once the new one is whole."""
        path = self.path / self.CHECKPOINT
        buf = io.BytesIO()
        torch.save(state, buf)
        tmp = write_temporary(path, buf.getbuffer())
        if path.exists():
            os.replace(path, self.path / self.PREVIOUS)
        replace(tmp, path)
        return path

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict:
        """The newest whole checkpoint: checkpoint.pt, else checkpoint-prev.pt.

        Opened with ``weights_only=True``: a checkpoint holds tensors and plain values only.
        """
        errors = []
        for name in (self.CHECKPOINT, self.PREVIOUS):
            path = self.path / name
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
            raise ConfigError(f"no checkpoint in {self.path}: the run was stopped before its first save")
        raise ConfigError(
            f"no loadable checkpoint in {self.path}: " + "; ".join(errors) + ". The damaged files, config.json and "
            "history.jsonl are left as they are; train again into a new --out, or put back a copy of a checkpoint."
        )

    def checkpoint_mtime(self) -> float | None:
        try:
            return (self.path / self.CHECKPOINT).stat().st_mtime
        except OSError:
            return None

    def trained_steps(self) -> tuple[int, int]:
        """(iterations trained, iterations asked for), from the newest checkpoint; (0, 0) if none loads."""
        try:
            state = self.load_checkpoint()
        except Exception:  # noqa: BLE001 -- no checkpoint or unreadable: nothing trained yet
            return 0, 0
        return int(state["step"]), int(state["config"]["iterations"])

    def load_model(self, device: str | torch.device = "cpu") -> tuple[VAE, TrainConfig]:
        """The trained VAE (in eval mode) and its config."""
        state = self.load_checkpoint(map_location=device)
        config = TrainConfig.from_dict(state["config"])
        vae = vae_for_state(state["vae"]).to(device)
        vae.load_state_dict(state["vae"])
        return vae.eval(), config

    # -- history -----------------------------------------------------------------------------------

    def read_history(self) -> list[dict]:
        """The rows of history.jsonl (a last line cut short by a kill is skipped)."""
        path = self.path / self.HISTORY
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        return rows

    def last_history_row(self) -> dict | None:
        """The last whole row, read from the end of the file (cheap on a long history), or None."""
        try:
            with open(self.path / self.HISTORY, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 4096))
                return json.loads(f.read().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            return None

    def append_history(self, row: dict) -> None:
        """One logged window, appended (a kill mid-line leaves a cut line that :meth:`read_history` skips)."""
        with open(self.path / self.HISTORY, "a") as f:
            f.write(json.dumps(row) + "\n")

    def truncate_history(self, step: int) -> None:
        """Drop rows logged after ``step`` (the checkpoint a run resumes from): they will be logged again."""
        if (self.path / self.HISTORY).exists():
            kept = [json.dumps(r) + "\n" for r in self.read_history() if r["step"] <= step]
            atomic_write_bytes(self.path / self.HISTORY, "".join(kept).encode())

    # -- snapshots ---------------------------------------------------------------------------------

    def save_snapshot(self, step: int, vae_state: dict) -> Path:
        """The VAE's weights at ``step``, in snapshots/step_NNNNNNN.pt (for metrics over training)."""
        path = self.path / self.SNAPSHOTS / f"step_{step:07d}.pt"
        path.parent.mkdir(exist_ok=True)
        buf = io.BytesIO()
        torch.save({"step": step, "vae": vae_state}, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def load_snapshots(self, device: str | torch.device = "cpu") -> list[tuple[int, VAE]]:
        """(step, VAE in eval mode) for every snapshot, in step order."""
        if not self.exists():
            raise ConfigError(f"{self.path} is not a run folder (no {self.CONFIG})")
        out = []
        for path in sorted((self.path / self.SNAPSHOTS).glob("step_*.pt")):
            state = torch.load(path, map_location=device, weights_only=True)
            vae = vae_for_state(state["vae"]).to(device)
            vae.load_state_dict(state["vae"])
            out.append((int(state["step"]), vae.eval()))
        return out

    # -- scores ------------------------------------------------------------------------------------

    def _read_json(self, name: str) -> dict | None:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def _write_json(self, name: str, value: dict) -> Path:
        atomic_write_bytes(self.path / name, json.dumps(value, indent=1).encode())
        return self.path / name

    def read_metrics(self) -> dict | None:
        """metrics.json, or None if the run was not scored (or the file is unreadable)."""
        return self._read_json(self.METRICS)

    def write_metrics(self, result: dict) -> Path:
        return self._write_json(self.METRICS, result)

    def metrics_are_current(self) -> bool:
        """Whether metrics.json was written after the newest checkpoint (it scores the model now in the folder)."""
        checkpoint = self.checkpoint_mtime()
        try:
            return checkpoint is not None and (self.path / self.METRICS).stat().st_mtime >= checkpoint
        except OSError:
            return False

    def read_trajectory(self) -> dict | None:
        """trajectory.json ({"settings", "points"}), or None."""
        return self._read_json(self.TRAJECTORY)

    def write_trajectory(self, trajectory: dict) -> Path:
        return self._write_json(self.TRAJECTORY, trajectory)


def vae_for_state(state: dict) -> VAE:
    """An untrained VAE with the shape of a saved state dict: latents, channels (1 for dSprites, 3 for colour
    data) and hidden width (128, or 256 in the paper's colour variant) are read off the weights."""
    z_dim = state["decoder.fc.0.weight"].shape[1]
    return VAE(z_dim, channels=state["encoder.convs.0.weight"].shape[1], hidden=state["encoder.fc.1.weight"].shape[0])


# The reads a notebook or a script makes most, as functions of a path.

def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """:meth:`RunFolder.read_history` of ``run_dir``."""
    return RunFolder(run_dir).read_history()


def load_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[VAE, TrainConfig]:
    """:meth:`RunFolder.load_model` of ``run_dir``: the trained VAE (in eval mode) and its config."""
    return RunFolder(run_dir).load_model(device)
