"""The reference sweep shipped with the repository (``reference/``): its results, and a few trained models.

    rows = read_results()                      # one dict per run: settings, final loss terms, metrics
    curves = read_trajectories()               # the FactorVAE metric along training
    vae, config = load_reference_model("factorvae_g35")

The reference sweep is trained on a 2-core CPU at a small fraction of the paper's 3e5 iterations (the
spec, ``reference/sweep.toml``, says how many and why). It lets every notebook show trained models and real
results without a GPU. ``publish`` writes it: the tables, each run's config, history, metrics and
trajectory (kilobytes), and the weights of a few models in fp16 (about 1 MB each).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import torch

from .config import ConfigError, TrainConfig
from .models import VAE
from .paths import CHECKOUT, configured_folder
from .runs import RunFolder, vae_for_state
from .storage import atomic_write_bytes

RUN_FILES = (RunFolder.CONFIG, RunFolder.HISTORY, RunFolder.METRICS, RunFolder.TRAJECTORY)  # published, small


def reference_dir() -> Path:
    """``$FVAE_REFERENCE``, else the ``reference/`` folder of the source checkout this package runs from."""
    path = configured_folder("FVAE_REFERENCE", "reference", CHECKOUT / "reference")
    if not (path / "results.jsonl").is_file():
        raise FileNotFoundError(
            f"no reference results in {path}: they ship in the repository's reference/ folder. Run from a clone "
            "(git clone https://github.com/fvae-course/factorvae), or point FVAE_REFERENCE at a copy of that folder")
    return path


def read_results(folder: str | os.PathLike | None = None) -> list[dict]:
    """The rows of a sweep's ``results.jsonl`` (default: the shipped reference sweep)."""
    path = Path(folder) if folder else reference_dir()
    with open(path / "results.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_trajectories(folder: str | os.PathLike | None = None) -> list[dict]:
    """The rows of a sweep's ``trajectories.csv``: name, model, value, seed, step, factor_vae, and for the runs
    whose snapshots were decomposed the KL decomposition's terms (mutual_info, total_correlation, ...; None
    for the others)."""
    path = Path(folder) if folder else reference_dir()
    with open(path / "trajectories.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    words = {"name", "model"}
    return [dict(r, seed=int(r["seed"]), step=int(r["step"]),
                 **{k: (float(v) if v != "" else None) for k, v in r.items() if k not in words | {"seed", "step"}})
            for r in rows]


def reference_history(name: str, folder: str | os.PathLike | None = None) -> list[dict]:
    """A run's logged history (``runs/<name>/history.jsonl``) from a sweep's published folder (default: the reference)."""
    path = (Path(folder) if folder else reference_dir()) / "runs" / name
    if not (path / RunFolder.HISTORY).is_file():
        raise FileNotFoundError(f"no history of a run {name!r} in {path.parent}")
    return RunFolder(path).read_history()


def model_names(folder: str | os.PathLike | None = None) -> list[str]:
    """The runs whose weights are shipped (``models/<name>.pt``)."""
    path = Path(folder) if folder else reference_dir()
    return sorted(p.stem for p in (path / "models").glob("*.pt"))


def shipped_iterations(name: str) -> int | None:
    """How long the shipped model ``name`` was trained, or None where no model of that name is shipped."""
    try:
        if name not in model_names():
            return None
    except (FileNotFoundError, OSError):
        return None
    return RunFolder(reference_dir() / "runs" / name).read_config().iterations


def load_reference_model(name: str, device: str | torch.device = "cpu", folder: str | os.PathLike | None = None) -> tuple[VAE, TrainConfig]:
    """A shipped model (fp16 on disk, float32 here) in eval mode, and its run's config."""
    path = (Path(folder) if folder else reference_dir()) / "models" / f"{name}.pt"
    if not path.is_file():
        raise ConfigError(f"no reference model {name!r}; the shipped ones are {model_names(folder)}")
    state = torch.load(path, map_location=device, weights_only=True)
    weights = {k: v.float() for k, v in state["vae"].items()}
    vae = vae_for_state(weights).to(device)
    vae.load_state_dict(weights)
    return vae.eval(), TrainConfig.from_dict(state["config"])


def publish_model(run: str | os.PathLike, path: str | os.PathLike) -> Path:
    """A run's final weights as a reference model: the VAE's tensors in fp16, its step and config (about 1 MB)."""
    state = RunFolder(run).load_checkpoint()
    small = dict(step=int(state["step"]), config=state["config"],
                 vae={k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state["vae"].items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(small, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


class AlreadyPublished(ConfigError):
    """The publish folder holds published results, and overwriting them was not asked for."""


def publish(out: str | os.PathLike, spec, rows: list[dict], overwrite: bool = False) -> Path:
    """Copy a complete sweep's small results into ``spec.publish['folder']``, with fp16 weights of ``publish['models']``.

    Only a sweep whose every run finished is published; a folder that already holds published results (the
    shipped reference, say) is replaced only with ``overwrite=True`` (``--overwrite-published``). Everything is
    written to a temporary file and renamed, so an interrupted publish leaves the old files whole.
    """
    out, target = Path(out), Path(spec.publish["folder"])
    unfinished = [r["name"] for r in rows if r.get("status") != "finished"]
    if unfinished:
        raise ConfigError(f"not publishing into {target}: runs not finished: {', '.join(unfinished)}; run the sweep again first")
    if (target / "results.csv").exists() and not overwrite:
        raise AlreadyPublished(f"{target} already holds published results (results.csv); they are left as they are. "
                               "To replace them with this sweep's, pass --overwrite-published (publish(..., overwrite=True))")
    (target / "runs").mkdir(parents=True, exist_ok=True)
    for name in ("results.csv", "results.jsonl", "trajectories.csv", "sweep.json"):
        atomic_write_bytes(target / name, (out / name).read_bytes())
    for row in rows:
        for file in RUN_FILES:
            if (out / row["name"] / file).is_file():
                (target / "runs" / row["name"]).mkdir(exist_ok=True)
                atomic_write_bytes(target / "runs" / row["name"] / file, (out / row["name"] / file).read_bytes())
    for name in spec.publish.get("models", []):
        publish_model(out / name, target / "models" / f"{name}.pt")
    stale = {p.name for p in (target / "runs").iterdir()} - {r["name"] for r in rows} if (target / "runs").is_dir() else set()
    for name in stale:  # runs no longer in the spec
        shutil.rmtree(target / "runs" / name)
    return target
