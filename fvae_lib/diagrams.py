"""Diagrams of the method: Algorithm 2 as a flow chart, and the permutation trick as a picture.

Both return a matplotlib Figure (no pyplot state), like :mod:`fvae_lib.plots`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .objectives import permute_dims
from .display import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def permutation_picture(batch: int = 6, dims: int = 4, seed: int = 0) -> Figure:
    """Algorithm 1 on a small batch: each cell is coloured by the code (row) it comes from.

    Left, a batch of codes: every row one colour. Right, after ``permute_dims``: every column holds the same
    cells as before (the marginals are kept), but each row now mixes cells of different codes (the joint is
    broken). The cell labels say which code and dimension a value came from.
    """
    g = torch.Generator().manual_seed(seed)
    origin = torch.arange(batch, dtype=torch.float32)[:, None].expand(batch, dims).contiguous()  # cell -> its row
    permuted = permute_dims(origin, g)
    fig = new_figure(figsize=(1.0 + 1.3 * dims, 0.5 + 0.42 * batch), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, grid, title in zip(axes, (origin, permuted), ("a batch of codes z (one colour per code)",
                                                          "permute_dims(z): each column shuffled on its own")):
        ax.imshow(grid.numpy(), cmap="tab10", vmin=0, vmax=9, aspect="auto")
        for i in range(batch):
            for j in range(dims):
                ax.text(j, i, f"z{int(grid[i, j]) + 1},{j + 1}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(dims), [f"dim {j + 1}" for j in range(dims)], fontsize=7)
        ax.set_yticks(range(batch), [f"row {i + 1}" for i in range(batch)], fontsize=7)
        ax.set_title(title, fontsize=8)
    return fig


_BOXES = {  # name: (x, y, width, text, colour) on a 0-10.6 x 0-6.6 canvas
    "x": (0.9, 4.6, 1.5, "batch B\nof images", "#dddddd"),
    "enc": (2.9, 4.6, 1.5, "encoder\nq(z|x)", "#c6dbef"),
    "z": (4.9, 4.6, 1.5, "z ~ q(z|x)", "#ffffff"),
    "dec": (6.9, 5.5, 1.5, "decoder\np(x|z)", "#c6dbef"),
    "recon": (9.3, 5.5, 2.2, "recon + KL", "#fdd0a2"),
    "dvae": (6.9, 3.7, 1.5, "D(z)", "#c7e9c0"),
    "tc": (9.3, 3.7, 2.2, "+ γ · mean(logit₀ − logit₁)", "#fdd0a2"),
    "x2": (0.9, 1.4, 1.5, "batch B′\n(independent)", "#dddddd"),
    "enc2": (2.9, 1.4, 1.5, "encoder", "#c6dbef"),
    "perm": (4.9, 1.4, 1.5, "permute_dims\n(Algorithm 1)", "#ffffff"),
    "dstep": (8.2, 1.4, 3.0, "D loss: D(z.detach()) as class 0,\nD(permuted z′) as class 1", "#c7e9c0"),
}
_HEIGHT = 0.8


def _edge(a, b):
    """The points where the segment between two boxes' centres leaves the first box and enters the second."""
    (xa, ya, wa, *_), (xb, yb, wb, *_) = a, b
    dx, dy = xb - xa, yb - ya

    def t(w):
        return min(w / 2 / abs(dx) if dx else np.inf, _HEIGHT / 2 / abs(dy) if dy else np.inf)

    ta, tb = t(wa), t(wb)
    return (xa + ta * dx, ya + ta * dy), (xb - tb * dx, yb - tb * dy)


_ARROWS = [("x", "enc"), ("enc", "z"), ("z", "dec"), ("dec", "recon"), ("z", "dvae"), ("dvae", "tc"),
           ("x2", "enc2"), ("enc2", "perm"), ("perm", "dstep"), ("z", "dstep")]


def algorithm2_diagram() -> Figure:
    """One iteration of Algorithm 2 (Kim & Mnih 2018) as a flow chart: the VAE step, then the D step."""
    from matplotlib.patches import FancyBboxPatch

    fig = new_figure(figsize=(10, 5.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10.6)
    ax.set_ylim(0, 6.6)
    ax.axis("off")
    for x, y, width, text, colour in _BOXES.values():
        ax.add_patch(FancyBboxPatch((x - width / 2, y - _HEIGHT / 2), width, _HEIGHT, boxstyle="round,pad=0.04",
                                    fc=colour, ec="0.3", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8)
    for a, b in _ARROWS:
        start, end = _edge(_BOXES[a], _BOXES[b])
        style = dict(arrowstyle="->", color="0.25", lw=1.0, shrinkA=2, shrinkB=2)
        if (a, b) == ("z", "dstep"):
            style.update(ls="--", color="C2", connectionstyle="arc3,rad=-0.2")
        ax.annotate("", xy=end, xytext=start, arrowprops=style)
    ax.text(4.9, 6.35, "1. VAE step on batch B: minimise recon + KL + γ·TC estimate; gradients pass through D,\n"
            "    but the VAE optimiser holds only the encoder and decoder, so D is not changed",
            ha="center", va="center", fontsize=8.5, color="C0")
    ax.text(4.9, 2.55, "2. D step: z from B, detached (class 0: from q(z)), against permuted codes of B′\n"
            "    (class 1: from q̄(z)); D's optimiser holds only D", ha="center", va="center", fontsize=8.5, color="C2")
    ax.text(4.9, 0.35, "z.detach(): D's loss must not reach the encoder (notebook 05). Repeat for every iteration.",
            ha="center", va="center", fontsize=8, color="0.35")
    ax.plot([0.1, 10.5], [3.05, 3.05], color="0.7", lw=0.8, ls=":")
    return fig


def permutation_origins(batch: int = 6, dims: int = 4, seed: int = 0) -> np.ndarray:
    """The rows the right panel of :func:`permutation_picture` draws: which input row each cell came from."""
    g = torch.Generator().manual_seed(seed)
    origin = torch.arange(batch, dtype=torch.float32)[:, None].expand(batch, dims).contiguous()
    return permute_dims(origin, g).numpy().astype(int)
