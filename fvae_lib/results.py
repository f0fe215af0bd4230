"""A sweep's results table, summarised: runs grouped by model and β or γ, and the trade-off between them.

Pure Python and NumPy over the rows of ``results.jsonl`` (:func:`fvae_lib.reference.read_results`), so that
the figures, the notebooks and the README all read the same numbers.

    groups = summarise(rows, ["final_recon", "factor_vae.eval_accuracy"])
    front = pareto_front(groups, "final_recon", "factor_vae.eval_accuracy")
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

RECONSTRUCTION = "final_recon"  # nats per image, averaged over the last 10% of training
METRIC_LABELS = {
    "final_recon": "reconstruction error (nats/image)",
    "factor_vae.eval_accuracy": "FactorVAE metric",
    "beta_vae.eval_accuracy": "β-VAE metric",
    "mig.mig": "MIG",
    "decomposition.mutual_info": "I(x; z) (nats)",
    "decomposition.total_correlation": "TC (nats)",
    "decomposition.avg_kl": "average KL (nats)",
}


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def summarise(rows: list[dict], columns: list[str]) -> list[dict]:
    """One entry per (model, value) over its finished runs: seeds, and the mean, sd, min and max of each column.

    Entries come out in model order (β-VAE first) and by increasing β or γ.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("status") == "finished":
            groups[(row["model"], float(row["value"]))].append(row)
    out = []
    for (model, value), members in sorted(groups.items(), key=lambda kv: (kv[0][0] != "betavae", kv[0][1])):
        entry = dict(model=model, value=value, hyperparameter=members[0]["hyperparameter"],
                     seeds=sorted(r["seed"] for r in members))
        for column in columns:
            values = np.array([_number(r.get(column)) for r in members])
            entry[column] = dict(mean=float(np.mean(values)), sd=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                 min=float(np.min(values)), max=float(np.max(values)), values=values.tolist())
        out.append(entry)
    return out


def pareto_front(groups: list[dict], error: str = RECONSTRUCTION, score: str = "factor_vae.eval_accuracy") -> list[dict]:
    """The groups no other group beats on both means: lower ``error`` and higher ``score``."""
    def beaten(g):
        return any(h is not g and h[error]["mean"] <= g[error]["mean"] and h[score]["mean"] >= g[score]["mean"]
                   and (h[error]["mean"] < g[error]["mean"] or h[score]["mean"] > g[score]["mean"]) for h in groups)

    return [g for g in groups if not beaten(g)]


def setting_label(model: str, value: float) -> str:
    """A run's setting as the figures and tables write it: ``β=4`` (β-VAE) or ``γ=35`` (FactorVAE)."""
    return f"{'β' if model == 'betavae' else 'γ'}={value:g}"


def label(group: dict) -> str:
    """:func:`setting_label` of a summarised group."""
    return setting_label(group["model"], group["value"])
