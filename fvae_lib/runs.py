"""Reading run folders: config, checkpoints, history, snapshots and the trained model.

A run folder holds:
    config.json          the TrainConfig, written before the first step
    checkpoint.pt        everything needed to resume bit for bit (tensors and plain values only:
                         ``torch.load(path, weights_only=True)`` opens it); checkpoint-prev.pt is the one before
    history.jsonl        one JSON object per logged step: window means of every loss term, the KL of
                         every latent dimension, throughput, threads and elapsed time
    snapshots/           the VAE's weights every ``snapshot_every`` steps
    *.png                figures written at the end of the run

The trainer (:mod:`fvae_lib.train`) writes them; evaluation, the notebooks and the command line read
them through here, without importing the trainer.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .config import ConfigError, TrainConfig
from .models import VAE

CHECKPOINT_FORMAT = 1


def read_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig saved in a run folder's config.json."""
    path = Path(run_dir) / "config.json"
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path} is not a readable run config ({err})") from None


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    return any((Path(run_dir) / name).exists() for name in ("checkpoint.pt", "checkpoint-prev.pt"))


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


def trained_steps(run_dir: str | os.PathLike) -> tuple[int, int]:
    """(iterations trained, iterations asked for) of a run folder, from its newest checkpoint; (0, 0) if none loads."""
    try:
        state = load_checkpoint(run_dir)
    except Exception:  # noqa: BLE001 -- no checkpoint or unreadable: nothing trained yet
        return 0, 0
    return int(state["step"]), int(state["config"]["iterations"])


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
