"""Figures (matplotlib, headless-safe): every function returns a Figure and draws nothing globally."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .display import new_figure
from .storage import atomic_write_bytes

if TYPE_CHECKING:  # matplotlib is imported lazily; the annotations say which functions return a figure
    from matplotlib.figure import Figure


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` to ``path`` through a temporary file and a rename (a kill never leaves half a PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def factor_samples(data, per_factor: int = 8, base: np.ndarray | None = None) -> Figure:
    """One row per factor: images that vary only that factor, the others held at ``base``.

    Args:
        data: a ground-truth dataset (the protocol in :mod:`fvae_lib.data`).
        per_factor: images per row, spread evenly over the factor's values.
        base: (K,) classes of the other factors; default the middle of every factor's range.
    """
    sizes = np.asarray(data.factor_sizes)
    base = sizes // 2 if base is None else np.asarray(base)
    fig = new_figure(figsize=(1.1 * per_factor + 1.6, 1.2 * len(sizes)))
    axes = fig.subplots(len(sizes), per_factor, squeeze=False)
    for k, name in enumerate(data.factor_names):
        picks = np.unique(np.linspace(0, sizes[k] - 1, per_factor).round().astype(int))
        factors = np.repeat(base[None], len(picks), axis=0)
        factors[:, k] = picks
        imgs = data.sample_observations(factors).numpy()
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(picks):
                ax.imshow(imgs[j, 0], cmap="gray", vmin=0, vmax=1)
                ax.set_title(_value_label(data.factor_values[k][picks[j]], name), fontsize=7)
            else:
                ax.axis("off")
        axes[k, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"{type(data).__name__}: one factor varied per row", fontsize=10)
    return fig


def _value_label(value, name: str) -> str:
    if name == "shape":
        return ("square", "ellipse", "heart")[int(round(value)) - 1]
    if name == "orientation":
        return f"{np.degrees(value):.0f}°"
    return f"{value:.2f}"


# --------------------------------------------------------------------------------------------------
# Models: reconstructions, traversals, per-dimension KL
# --------------------------------------------------------------------------------------------------

COLLAPSED_KL = 0.05  # nats: a latent whose average KL to the prior is below this carries ~no information


def _device_of(module):
    return next(module.parameters()).device


def encode_stats(vae, x):
    """Encoder means and the average KL of each latent to the prior over a batch: (mu (n, d), kl (d,))."""
    import torch

    from .objectives import kl_per_dimension

    with torch.no_grad():
        mu, logvar = vae.encoder(x.to(_device_of(vae)))
        return mu.float().cpu(), kl_per_dimension(mu.float(), logvar.float()).mean(0).cpu()


def reconstructions(vae, data, n: int = 8, rng: np.random.Generator | None = None) -> Figure:
    """Top row: dataset images; bottom row: the decoder's Bernoulli means at the encoder means."""
    import torch

    rng = rng or np.random.default_rng(0)
    x = data.sample_observations(data.sample_factors(n, rng))
    with torch.no_grad():
        mu, _ = vae.encoder(x.to(_device_of(vae)))
        recon = torch.sigmoid(vae.decoder(mu)).float().cpu()
    fig = new_figure(figsize=(1.1 * n, 2.5))
    axes = fig.subplots(2, n, squeeze=False)
    for j in range(n):
        for row, img in enumerate((x[j, 0], recon[j, 0])):
            axes[row, j].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, j].set_xticks([]), axes[row, j].set_yticks([])
    axes[0, 0].set_ylabel("data", fontsize=9)
    axes[1, 0].set_ylabel("recon", fontsize=9)
    return fig


def decode_codes(vae, codes) -> np.ndarray:
    """The decoder's Bernoulli means (n, H, W) for latent codes (n, d): what traversals and the explorer show."""
    import torch

    with torch.no_grad():
        z = torch.as_tensor(np.asarray(codes, dtype=np.float32)).to(_device_of(vae))
        return torch.sigmoid(vae.decoder(z)).float().cpu().numpy()[:, 0]


def traversal_images(vae, x, values, order=None):
    """Decoded images when each latent of x's mean code is set to each of ``values``: (d, len(values), 64, 64)."""
    import torch

    with torch.no_grad():
        mu, _ = vae.encoder(x[:1].to(_device_of(vae)))
    start = mu[0].float().cpu().numpy()
    order = list(range(len(start))) if order is None else list(order)
    codes = np.tile(start, (len(order), len(values), 1))
    for row, j in enumerate(order):
        codes[row, :, j] = values
    imgs = decode_codes(vae, codes.reshape(-1, len(start)))
    return imgs.reshape(len(order), len(values), *imgs.shape[-2:])


def traversals(vae, data, n_values: int = 9, limit: float = 2.5, rng: np.random.Generator | None = None,
               title: str | None = None) -> Figure:
    """One row per latent, ordered by its average KL to the prior (most informative first).

    Each row decodes one image's mean code with that latent swept over [-limit, limit]; latents with
    KL below ``COLLAPSED_KL`` nats are marked as collapsed (the decoder ignores them). ``title``: the model's name,
    put before the figure's title (two models' traversals side by side are told apart by it).
    """
    rng = rng or np.random.default_rng(0)
    x = data.sample_observations(data.sample_factors(256, rng))
    _, kl = encode_stats(vae, x)
    order = np.argsort(-kl.numpy())
    values = np.linspace(-limit, limit, n_values)
    imgs = traversal_images(vae, x, values, order)
    fig = new_figure(figsize=(0.9 * n_values + 1.6, 0.9 * len(order) + 0.6))
    axes = fig.subplots(len(order), 1, squeeze=False)[:, 0]
    size, gap = imgs.shape[-1], max(1, imgs.shape[-1] // 16)
    centres = [c * (size + gap) + size / 2 - 0.5 for c in range(n_values)]
    for row, j in enumerate(order):  # one picture per row, its images side by side: far cheaper to draw than a grid of axes
        collapsed = kl[j] < COLLAPSED_KL
        strip = np.ones((imgs.shape[-2], n_values * (size + gap) - gap))  # white between the images
        for c in range(n_values):
            strip[:, c * (size + gap): c * (size + gap) + size] = imgs[row, c]
        ax = axes[row]
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, alpha=0.35 if collapsed else 1.0, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        label = f"z{j}\nKL {kl[j]:.{3 if kl[j] < 0.1 else 2}f}" + ("\ncollapsed" if collapsed else "")  # 0.049 vs 0.053
        ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    axes[0].set_xticks(centres, [f"{v:+.1f}" for v in values], fontsize=7)
    axes[0].xaxis.tick_top()
    axes[0].tick_params(length=0)
    fig.suptitle(f"{title + ': ' if title else ''}latent traversals (rows ordered by KL)", fontsize=10)
    return fig


def kl_bars(kl, ax=None) -> Figure:
    """Bar chart of the average KL of every latent to the prior, collapsed ones in grey."""
    kl = np.asarray(kl)
    fig = None
    if ax is None:
        fig = new_figure(figsize=(5, 2.6))
        ax = fig.subplots()
    colors = ["lightgrey" if k < COLLAPSED_KL else "C0" for k in kl]
    ax.bar(np.arange(len(kl)), kl, color=colors)
    ax.set_xticks(np.arange(len(kl)), [f"z{j}" for j in range(len(kl))], fontsize=8)
    ax.set_ylabel("KL to prior (nats)")
    return fig or ax.figure


# --------------------------------------------------------------------------------------------------
# Runs: training curves
# --------------------------------------------------------------------------------------------------


def training_curves(history: list[dict]) -> Figure:
    """Reconstruction, KL, TC estimate and discriminator loss/accuracy against the iteration."""
    if not history:
        raise ValueError("the history is empty: the run has logged nothing yet")
    steps = np.array([r["step"] for r in history])
    has_d = "d_loss" in history[0]
    fig = new_figure(figsize=(10, 6.2 if has_d else 3.2))
    axes = fig.subplots(2 if has_d else 1, 2, squeeze=False).ravel()
    series = [("recon", "reconstruction (nats/image)"), ("kl", "KL(q(z|x) ‖ p(z)) (nats)")]
    if has_d:
        series.append(("tc", "TC estimate (nats)"))
    for ax, (key, title) in zip(axes, series):
        ax.plot(steps, [r[key] for r in history])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
    if has_d:
        axes[2].axhline(0, color="grey", lw=0.8, ls=":")
        ax = axes[3]
        ax.plot(steps, [r["d_loss"] for r in history], label="D loss")
        ax.axhline(np.log(2), color="grey", lw=0.8, ls=":", label="ln 2 (chance)")
        ax.set_title("discriminator", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        twin = ax.twinx()
        twin.plot(steps, [r["d_acc"] for r in history], color="C1", label="D accuracy")
        twin.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=7)
        twin.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def write_run_figures(run_dir, vae, data, history) -> list:
    """Reconstruction grid, latent traversals and training curves into a run folder."""
    from .runs import RunFolder

    folder = RunFolder(run_dir)
    vae.eval()
    return [
        save_figure(reconstructions(vae, data), folder.figure("reconstructions")),
        save_figure(traversals(vae, data), folder.figure("traversals")),
        save_figure(training_curves(history), folder.figure("training_curves")),
    ]


# --------------------------------------------------------------------------------------------------
# Which latent took which factor
# --------------------------------------------------------------------------------------------------


def mean_code_by_factor(codes: np.ndarray, factors: np.ndarray, factor_sizes) -> list[np.ndarray]:
    """For every factor k: (size_k, d) mean code over the points whose factor k has each value."""
    out = []
    for k, size in enumerate(factor_sizes):
        counts = np.bincount(factors[:, k], minlength=size)[:, None]
        sums = np.zeros((size, codes.shape[1]))
        np.add.at(sums, factors[:, k], codes)
        out.append(sums / np.maximum(counts, 1))
    return out


def latents_vs_factors(codes: np.ndarray, factors: np.ndarray, data, kl=None, max_latents: int = 10) -> Figure:
    """Mean code of each latent (rows) against each factor's value (columns).

    A disentangled latent moves with exactly one factor and stays flat against the others. Rows are
    ordered by ``kl`` (if given, collapsed latents dropped) or by the codes' variance.
    """
    score = np.asarray(kl) if kl is not None else codes.var(0)
    order = [j for j in np.argsort(-score) if kl is None or score[j] >= COLLAPSED_KL][:max_latents]
    if not order:
        order = list(np.argsort(-score)[:1])
    means = mean_code_by_factor(codes, factors, data.factor_sizes)
    fig = new_figure(figsize=(2.1 * len(data.factor_sizes), 1.3 * len(order) + 0.6))
    axes = fig.subplots(len(order), len(data.factor_sizes), squeeze=False, sharey="row")
    for r, j in enumerate(order):
        for k, name in enumerate(data.factor_names):
            ax = axes[r, k]
            ax.plot(data.factor_values[k], means[k][:, j], marker="." if data.factor_sizes[k] < 8 else None)
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(f"z{j}", fontsize=9)
    fig.suptitle("mean code against each factor (a disentangled latent moves with one factor only)", fontsize=9)
    return fig


def metric_matrices(factor_names, votes=None, active=None, mutual_info=None, entropy=None, importance=None,
                    title: str | None = None) -> Figure:
    """The matrices behind three scores, as heat maps, factors down the side and latents across:

    * the FactorVAE metric's votes V[k, j] (``factor_vae_score(details=True)``: ``votes``, ``active``): how often
      latent j had the smallest normalised variance when factor k was fixed; a disentangled code has one
      dominant cell per row and per column;
    * MIG's mutual information I(z_j; v_k) / H(v_k) (``mig(details=True)``): MIG is the gap between the two largest
      cells of each row, averaged;
    * DCI's importance R[j, k] (``dci(details=True)``): how much the classifier of factor k relies on latent j;
      disentanglement asks one factor per latent (column), completeness one latent per factor (row).
    """
    panels = []
    if votes is not None:
        v = np.asarray(votes, float)
        panels.append(("FactorVAE metric: votes (share of each factor's)", v / np.maximum(v.sum(1, keepdims=True), 1),
                       [f"z{j}" for j in (active if active is not None else range(v.shape[1]))]))
    if mutual_info is not None:
        m = np.asarray(mutual_info, float).T / np.asarray(entropy, float)[:, None]
        panels.append(("MIG: I(z_j; v_k) / H(v_k)", m, [f"z{j}" for j in range(m.shape[1])]))
    if importance is not None:
        r = np.asarray(importance, float).T
        panels.append(("DCI: importance R (share of each factor's)", r / np.maximum(r.sum(1, keepdims=True), 1e-12),
                       [f"z{j}" for j in range(r.shape[1])]))
    if not panels:
        raise ValueError("metric_matrices needs at least one of votes, mutual_info (with entropy) or importance")
    fig = new_figure(figsize=(4.2 * len(panels), 2.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, matrix, columns) in zip(axes, panels):
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1e-12, float(matrix.max())), aspect="auto")
        ax.set_title(name, fontsize=8)
        ax.set_yticks(range(len(factor_names)), factor_names, fontsize=7)
        ax.set_xticks(range(len(columns)), columns, fontsize=7)
        for (k, j), value in np.ndenumerate(matrix):
            if value >= 0.1:
                ax.text(j, k, f"{value:.2f}".rstrip("0").rstrip("."), ha="center", va="center", fontsize=6,
                        color="white" if value > 0.6 * matrix.max() else "black")
        fig.colorbar(image, ax=ax, fraction=0.04)
    fig.subplots_adjust(top=0.8 if title else 0.88, bottom=0.12, wspace=0.35)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
