"""Figures of a sweep: the reconstruction-disentanglement trade-off, the metric over training, I(x;z) against TC,
and the KL decomposition along training against the training discriminator's estimate.

Each takes the rows of a results table (:mod:`fvae_lib.results`) and returns a Figure; the spread over seeds
is drawn, not hidden: every seed is a small point, the mean over seeds a large one with a bar from the lowest
to the highest seed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .display import new_figure
from .results import METRIC_LABELS, RECONSTRUCTION, label, setting_label, summarise

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {"betavae": "C0", "factorvae": "C1"}
NAMES = {"betavae": "β-VAE", "factorvae": "FactorVAE"}


def _scatter_groups(ax, groups, x: str, y: str) -> None:
    for model in ("betavae", "factorvae"):
        mine = [g for g in groups if g["model"] == model]
        if not mine:
            continue
        color = COLORS[model]
        for g in mine:
            ax.scatter(g[x]["values"], g[y]["values"], s=12, color=color, alpha=0.45, linewidths=0)
            ax.errorbar(g[x]["mean"], g[y]["mean"], color=color, fmt="o", ms=6, capsize=2, lw=1,
                        xerr=[[g[x]["mean"] - g[x]["min"]], [g[x]["max"] - g[x]["mean"]]],
                        yerr=[[g[y]["mean"] - g[y]["min"]], [g[y]["max"] - g[y]["mean"]]])
            ax.annotate(label(g), (g[x]["mean"], g[y]["mean"]), textcoords="offset points", xytext=(5, 4), fontsize=7, color=color)
        ax.plot([g[x]["mean"] for g in mine], [g[y]["mean"] for g in mine], color=color, lw=0.8, alpha=0.6,
                label=f"{NAMES[model]} (mean of seeds {', '.join(map(str, mine[0]['seeds']))})")
    ax.set_xlabel(METRIC_LABELS.get(x, x))
    ax.set_ylabel(METRIC_LABELS.get(y, y))


def tradeoff(rows: list[dict], metrics=("factor_vae.eval_accuracy", "beta_vae.eval_accuracy", "mig.mig"),
             title: str | None = None) -> Figure:
    """Reconstruction error (x) against each metric (y): better is up and to the left."""
    groups = summarise(rows, [RECONSTRUCTION, *metrics])
    fig = new_figure(figsize=(4.2 * len(metrics), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics):
        _scatter_groups(ax, groups, RECONSTRUCTION, metric)
        ax.annotate("better", xy=(0.04, 0.96), xytext=(0.2, 0.8), xycoords="axes fraction", fontsize=7, color="0.4",
                    arrowprops=dict(arrowstyle="->", color="0.5"))
    axes[0].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def metric_over_training(trajectories: list[dict], title: str | None = None) -> Figure:
    """The FactorVAE metric of each run's snapshots along training: one line per seed, the mean thicker."""
    fig = new_figure(figsize=(8.4, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, model in zip(axes, ("betavae", "factorvae")):
        mine = [t for t in trajectories if t["model"] == model]
        values = sorted({t["value"] for t in mine})
        for k, value in enumerate(values):
            color = f"C{k + (0 if model == 'betavae' else 3)}"
            runs = {}
            for t in mine:
                if t["value"] == value:
                    runs.setdefault(t["seed"], []).append((t["step"], t["factor_vae"]))
            for points in runs.values():
                ax.plot(*zip(*sorted(points)), color=color, lw=0.7, alpha=0.5)
            steps = sorted({s for points in runs.values() for s, _ in points})
            mean = [np.mean([v for points in runs.values() for s, v in points if s == step]) for step in steps]
            ax.plot(steps, mean, color=color, lw=2, marker="o", ms=3,
                    label=f"{setting_label(model, value)} ({len(runs)} seeds)")
        ax.set_title(NAMES[model], fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("FactorVAE metric")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def information_and_tc(rows: list[dict], title: str | None = None) -> Figure:
    """The KL decomposition of each group: I(x; z) (x) against TC (y). FactorVAE should lower TC and keep I."""
    x, y = "decomposition.mutual_info", "decomposition.total_correlation"
    groups = summarise(rows, [x, y])
    fig = new_figure(figsize=(4.6, 3.6), layout="constrained")
    ax = fig.subplots()
    _scatter_groups(ax, groups, x, y)
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def tc_along_training(histories: dict[str, list[dict]], decomposed: dict[str, list[dict] | float], window: int = 5,
                      title: str | None = None) -> Figure:
    """The training discriminator's TC estimate along training (a moving average over ``window`` logged windows),
    one line per run, against the KL decomposition's TC of the same encoder.

    ``decomposed[name]``: the run's trajectory points (``step``, ``total_correlation``, ``tc_error``; those of
    :func:`fvae_lib.reference.read_trajectories` that have them), drawn as points with ±2 standard errors; or
    one number, the final encoder's TC, drawn as a star at the last step.
    """
    fig = new_figure(figsize=(6.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for k, (name, history) in enumerate(histories.items()):
        steps = np.array([h["step"] for h in history if "tc" in h])
        tc = np.array([h["tc"] for h in history if "tc" in h])
        if len(tc) >= window:
            tc = np.convolve(tc, np.ones(window) / window, mode="valid")
            steps = steps[window - 1:]
        ax.plot(steps, tc, color=f"C{k}", lw=1.2, label=f"{name}: discriminator's estimate")
        found = decomposed.get(name)
        if isinstance(found, (int, float)):
            ax.scatter([history[-1]["step"]], [found], color=f"C{k}", marker="*", s=120, zorder=3,
                       label=f"{name}: decomposition, final encoder")
        elif found:
            points = sorted((p for p in found if p.get("total_correlation") is not None), key=lambda p: p["step"])
            ax.errorbar([p["step"] for p in points], [p["total_correlation"] for p in points],
                        yerr=[2 * (p.get("tc_error") or 0.0) for p in points], color=f"C{k}", marker="o", ms=5,
                        ls="--", lw=0.8, capsize=2, zorder=3, label=f"{name}: decomposition of its snapshots")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("iteration")
    ax.set_ylabel("TC (nats)")
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def decomposition_along_training(trajectories: list[dict], title: str | None = None) -> Figure:
    """I(x; z) (left) and TC (right, ±2 standard errors) of the snapshots of every run whose trajectory has the
    KL decomposition (a sweep with ``trajectory_decomposition``): one line per run, β-VAE dashed, FactorVAE solid."""
    runs: dict[str, list[dict]] = {}
    for t in trajectories:
        if t.get("total_correlation") is not None:
            runs.setdefault(t["name"], []).append(t)
    if not runs:
        raise ValueError("no trajectory point has the KL decomposition: sweep with trajectory_decomposition = true "
                         "(or a list of run names) to add it")
    fig = new_figure(figsize=(8.4, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for k, (name, points) in enumerate(sorted(runs.items(), key=lambda item: (item[1][0]["model"], item[1][0]["value"]))):
        points = sorted(points, key=lambda p: p["step"])
        model, value = points[0]["model"], points[0]["value"]
        style = dict(color=f"C{k}", marker="o", ms=4, ls="--" if model == "betavae" else "-",
                     label=f"{NAMES[model]} {setting_label(model, value)}"
                           + (f" (seed {points[0]['seed']})" if points[0]["seed"] else ""))
        steps = [p["step"] for p in points]
        axes[0].plot(steps, [p["mutual_info"] for p in points], **style)
        axes[1].errorbar(steps, [p["total_correlation"] for p in points],
                         yerr=[2 * (p.get("tc_error") or 0.0) for p in points], capsize=2, **style)
    axes[0].set_ylabel("I(x; z) (nats)")
    axes[1].set_ylabel("TC (nats)")
    for ax in axes:
        ax.set_xlabel("iteration")
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
