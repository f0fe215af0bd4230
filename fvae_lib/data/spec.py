"""dSprites' factor grid: the factors, their values, the image size, and reduced grids (every k-th class)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


REAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
REAL_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
REAL_MEAN_PIXEL = 0.042494423521889584  # published mean over the real file

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FULL_SIZES = (3, 6, 40, 32, 32)
FULL_VALUES = (
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),  # both 0 and 2*pi: classes 0 and 39 are the same image
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8  # 512 bytes a bit-packed image


def grid_sizes(steps: dict[str, int] | None = None) -> tuple[int, ...]:
    """Factor sizes of the dSprites grid reduced by ``steps`` (every step-th class of the named factors)."""
    return tuple(len(g) for g in reduce_grid([np.arange(s) for s in FULL_SIZES], steps))


def reduce_grid(base_grid: list[np.ndarray], steps: dict[str, int] | None) -> list[np.ndarray]:
    if not steps:
        return base_grid
    unknown = set(steps) - set(FACTOR_NAMES)
    if unknown:
        raise ValueError(f"steps names unknown factors {sorted(unknown)}; the factors are {FACTOR_NAMES}")
    for name, step in steps.items():
        if int(step) < 1:
            raise ValueError(f"steps[{name!r}] must be a positive integer, got {step}")
    if all(int(v) == 1 for v in steps.values()):
        return base_grid
    return [g[:: int(steps.get(name, 1))] for name, g in zip(FACTOR_NAMES, base_grid)]


def grid_classes(grid: Sequence[np.ndarray]) -> np.ndarray:
    """All full-grid classes of a (reduced) grid, in row-major order: (prod sizes, 5)."""
    mesh = np.meshgrid(*grid, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)
