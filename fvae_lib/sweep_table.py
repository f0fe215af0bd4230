"""A sweep's table: one row per run (settings, status, final loss terms, stability, metrics, decomposition) and the
metric over training, as ``results.csv`` / ``results.jsonl`` and ``trajectories.csv``."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .runs import RunFolder
from .storage import atomic_write_bytes
from .sweep import HYPERPARAMETER
from .trajectory import DECOMPOSITION_TERMS


def final_terms(history: list[dict], share: float = 0.1) -> dict:
    """Each logged loss term averaged over the last ``share`` of the logged windows (the last 10% of training)."""
    if not history:
        return {}
    tail = history[-max(1, int(round(len(history) * share))):]
    keys = [k for k, v in tail[-1].items() if isinstance(v, (int, float)) and k not in ("step", "elapsed_s", "threads", "threads_max")]
    return {k: float(np.mean([h[k] for h in tail if k in h])) for k in keys}


SPIKE_THRESHOLD = 1.25  # a final window's loss this many times the level before it: the run ended in a blow-up


def final_spike(history: list[dict], share: float = 0.1) -> dict:
    """Whether a run ended in a blow-up, which :func:`final_terms` and the final model's metrics would then report.

    ``final_spike``: the largest loss (recon + kl, in nats) of a window in the last ``share`` of the logged windows,
    over the median of the ``share`` before them; ``unstable``: above ``SPIKE_THRESHOLD``. In the reference sweep
    ``factorvae_g35_s1`` reads 2.77 (KL 23 → 167 and reconstruction 127 → 212 between iterations 4,750 and 4,950); every
    other run is at most 1.12.
    """
    k = max(1, int(round(len(history) * share)))
    tail, before = history[-k:], history[-2 * k:-k]
    if not before or not all("recon" in r and "kl" in r for r in tail + before):
        return {}
    level = float(np.median([r["recon"] + r["kl"] for r in before]))
    ratio = max(r["recon"] + r["kl"] for r in tail) / level if level > 0 else float("nan")
    return dict(final_spike=round(ratio, 3), unstable=bool(ratio > SPIKE_THRESHOLD))


def result_row(task: dict, outcome: dict | None = None) -> dict:
    """A run's row: its settings, status, training time, final loss terms, metrics and KL decomposition.

    outcome: what running it returned (its status and error); None for a run not finished: 'incomplete'.
    """
    run = RunFolder(task["folder"])
    config = task["config"]
    model = config["model"]
    row = dict(name=task["name"], model=model, hyperparameter=HYPERPARAMETER[model],
               value=config[HYPERPARAMETER[model]], beta=config["beta"], gamma=config["gamma"] if model == "factorvae" else None,
               seed=config["seed"], preset=config["preset"], iterations=config["iterations"])
    history = run.read_history()
    row["steps"] = history[-1]["step"] if history else 0
    row["status"] = (outcome or {}).get("status", "incomplete")
    row["error"] = (outcome or {}).get("error", "")
    row["train_seconds"] = round(history[-1]["elapsed_s"], 1) if history and "elapsed_s" in history[-1] else None
    row.update({f"final_{k}": round(v, 4) for k, v in final_terms(history).items() if k != "it_per_s"})
    row.update(final_spike(history))
    result = run.read_metrics() or {}
    for metric, values in result.get("metrics", {}).items():
        row.update({f"{metric}.{k}": v for k, v in values.items() if isinstance(v, (int, float)) and k != "seconds"})
    for k, v in result.get("decomposition", {}).items():
        if isinstance(v, (int, float)) and k not in ("seconds", "num_points", "num_samples"):
            row[f"decomposition.{k}"] = v
    return row


def write_table(path_stem: Path, rows: list[dict]) -> None:
    """``<stem>.csv`` and ``<stem>.jsonl``, written atomically; columns in first-seen order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path_stem.with_suffix(".csv"), text.getvalue().encode())
    atomic_write_bytes(path_stem.with_suffix(".jsonl"), "".join(json.dumps(r) + "\n" for r in rows).encode())


def write_trajectories(path: Path, tasks: list[dict]) -> None:
    rows = []
    for task in tasks:
        points = (RunFolder(task["folder"]).read_trajectory() or {}).get("points")
        if points is None:
            continue
        config = task["config"]
        rows += [dict(name=task["name"], model=config["model"], value=config[HYPERPARAMETER[config["model"]]],
                      seed=config["seed"], **p) for p in points]
    text = io.StringIO()
    columns = ["name", "model", "value", "seed", "step", "factor_vae"]
    columns += [k for k in DECOMPOSITION_TERMS if any(k in r for r in rows)]  # empty for runs not decomposed
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())
