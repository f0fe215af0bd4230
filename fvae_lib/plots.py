"""Figures (matplotlib, headless-safe): every function returns a Figure and draws nothing globally."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .data import atomic_write_bytes


def _figure(*args, **kwargs):
    # Figure() rather than pyplot.figure(): no global state, works headless, nothing to close.
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` to ``path`` through a temporary file and a rename (a kill never leaves half a PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def factor_samples(data, per_factor: int = 8, base: np.ndarray | None = None):
    """One row per factor: images that vary only that factor, the others held at ``base``.

    Args:
        data: a ground-truth dataset (the protocol in :mod:`fvae_lib.data`).
        per_factor: images per row, spread evenly over the factor's values.
        base: (K,) classes of the other factors; default the middle of every factor's range.
    """
    sizes = np.asarray(data.factor_sizes)
    base = sizes // 2 if base is None else np.asarray(base)
    fig = _figure(figsize=(1.1 * per_factor + 1.6, 1.2 * len(sizes)))
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
