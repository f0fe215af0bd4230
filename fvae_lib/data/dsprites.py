"""dSprites as a ground-truth dataset: the real file or the replica, cached bit-packed, on any reduced grid."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .cache import read_cache, write_cache, default_data_dir, pack_images, unpack_images
from .protocol import DatasetError, FactorGridMixin
from .real_file import HOW_TO_GET_THE_FILE, stream_real_images, inspect_real_file
from .replica import REPLICA_VERSION, render_dsprites
from .spec import FACTOR_NAMES, FULL_SIZES, FULL_VALUES, IMAGE_SIZE, REAL_FILENAME, REAL_MD5, grid_classes, reduce_grid


class DSprites(FactorGridMixin):
    """dSprites with 5 factors (shape 3, scale 6, orientation 40, posX 32, posY 32), colour dropped.

    Args:
        source: ``"auto"`` (the real file if present, else the replica), ``"real"`` or ``"replica"``.
        path: the real npz; default ``<data_dir>/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.
        data_dir: where the real file and the caches live; default :func:`default_data_dir`.
        steps: a reduced grid, e.g. ``{"orientation": 4, "posX": 4, "posY": 4}`` keeps every 4th value
            of those factors (the first value always). The same code path as the full grid.
        verify: re-hash the whole cache against its recorded checksum (and, for the real file, warn
            when its md5 is not the official one).
        progress: show a progress bar while building.

    Images are held bit-packed, (N, 512) uint8 (377 MB for the full grid); ``images(indices)`` and
    ``sample_observations`` unpack to float32 0/1 tensors of shape (n, 1, 64, 64) per batch.
    """

    factor_names = FACTOR_NAMES
    num_channels = 1
    image_size = IMAGE_SIZE

    def __init__(
        self,
        source: str = "auto",
        path: str | os.PathLike | None = None,
        data_dir: str | os.PathLike | None = None,
        steps: dict[str, int] | None = None,
        verify: bool = False,
        progress: bool = True,
    ):
        if source not in ("auto", "real", "replica"):
            raise ValueError(f"source must be 'auto', 'real' or 'replica', got {source!r}")
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        real_path = Path(path).expanduser() if path is not None else self.data_dir / REAL_FILENAME
        if source == "auto":
            source = resolve_source(source, real_path)
        if source == "real" and not real_path.exists():
            raise DatasetError(f"{real_path} does not exist. {HOW_TO_GET_THE_FILE}")
        self.source = source
        self._device_cache: dict[str, torch.Tensor] = {}
        if source == "real":
            base_grid, packed, self.cache_path, meta = self._load_real(real_path, verify, progress)
            self.real_path = real_path
        else:
            base_grid = [np.arange(s) for s in FULL_SIZES]
            packed, self.cache_path, meta = self._load_replica_for(base_grid, steps, verify, progress)
            self.real_path = None
        self.grid = reduce_grid(base_grid, steps)
        base_sizes = tuple(len(g) for g in base_grid)
        if packed.shape[0] == math.prod(base_sizes) and self.grid is not base_grid:
            positions = grid_classes([np.searchsorted(b, g) for b, g in zip(base_grid, self.grid)])
            packed = packed[np.ravel_multi_index(tuple(positions.T), base_sizes)]
        self.packed = packed
        self.factor_sizes = tuple(len(g) for g in self.grid)
        self.factor_values = [FULL_VALUES[k][g] for k, g in enumerate(self.grid)]
        self.meta = meta
        self._mean_pixel = meta.get("mean_pixel") if packed.shape[0] == meta.get("rows") else None

    # -- building and loading ------------------------------------------------------------------

    def _load_replica_for(self, base_grid, steps, verify, progress):
        npy = self.data_dir / f"dsprites_replica_v{REPLICA_VERSION}.npy"
        expect = {"source": "replica", "version": REPLICA_VERSION, "rows": math.prod(FULL_SIZES)}
        reduced = steps and any(int(v) > 1 for v in steps.values())
        if npy.exists() or not reduced:
            try:
                packed, meta = read_cache(npy, expect, verify)
                _spot_check(packed, npy)
                return packed, npy, meta
            except DatasetError as err:
                if npy.exists() or npy.with_suffix(".json").exists():
                    warnings.warn(f"rebuilding the dSprites replica cache: {err}", stacklevel=3)
            if not reduced:
                return self._build_replica(npy, expect, progress)
        # A reduced grid with no full cache: render just the images it needs, in memory.
        grid = reduce_grid(base_grid, steps)
        classes = grid_classes(grid)
        packed = pack_images(render_dsprites(classes))
        return packed, None, {"source": "replica", "version": REPLICA_VERSION, "rows": len(packed)}

    def _build_replica(self, npy, expect, progress):
        n = math.prod(FULL_SIZES)
        chunk = 16384

        def chunks():
            for s in range(0, n, chunk):
                idx = np.arange(s, min(n, s + chunk))
                yield pack_images(render_dsprites(np.stack(np.unravel_index(idx, FULL_SIZES), 1)))

        meta = write_cache(npy, n, chunks(), dict(expect), progress, "building the dSprites replica")
        packed, meta = read_cache(npy, expect, verify=False)
        return packed, npy, meta

    def _load_real(self, path, verify, progress):
        info = inspect_real_file(path)
        if info["n"] == math.prod(FULL_SIZES) and info["md5"] != REAL_MD5:
            msg = f"{path} has the structure of dSprites but md5 {info['md5']}, not the official {REAL_MD5}"
            if verify:
                raise DatasetError(msg + f". {HOW_TO_GET_THE_FILE}")
            warnings.warn(msg, stacklevel=3)
        grid = [np.asarray(g) for g in info["grid"]]
        npy = self.data_dir / f"dsprites_real_{info['md5'][:12]}.npy"
        expect = {"source": "real", "md5": info["md5"], "rows": info["n"], "grid": info["grid"]}
        try:
            packed, meta = read_cache(npy, expect, verify)
        except DatasetError as err:
            if npy.exists():
                warnings.warn(f"re-reading {path}: {err}", stacklevel=3)
            write_cache(npy, info["n"], stream_real_images(path, info["n"]), dict(expect), progress, f"reading {path.name}")
            packed, meta = read_cache(npy, expect, verify=False)
        return grid, packed, npy, meta

    # -- the protocol ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.packed)

    def __repr__(self) -> str:
        return f"DSprites(source={self.source!r}, factor_sizes={self.factor_sizes}, n={len(self)})"

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """float32 (n, 1, 64, 64) images for factor classes (n, 5); dSprites is noise-free, so rng is unused."""
        return self.images(self.index_of(factors))

    def full_classes(self, factors: np.ndarray) -> np.ndarray:
        """Classes on this grid -> classes on the full dSprites grid (what the renderer takes)."""
        factors = np.asarray(factors)
        return np.stack([g[factors[:, k]] for k, g in enumerate(self.grid)], axis=1)

    # -- images ---------------------------------------------------------------------------------

    def packed_on(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """The packed images (N, 512) uint8 as a tensor on ``device`` (copied there once)."""
        key = str(torch.device(device))
        if key not in self._device_cache:
            self._device_cache[key] = torch.from_numpy(self.packed).to(device)
        return self._device_cache[key]

    def images(self, indices, device: str | torch.device = "cpu", dtype=torch.float32) -> torch.Tensor:
        """(n, 1, 64, 64) images of the given row indices, on ``device``."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        packed = self.packed_on(device)
        return unpack_images(packed[idx.to(packed.device)], dtype)

    def mean_pixel(self) -> float:
        """Mean pixel value over the whole grid."""
        if self._mean_pixel is None:
            self._mean_pixel = float(np.unpackbits(self.packed, axis=1).mean(dtype=np.float64))
        return self._mean_pixel

    def summary(self) -> dict:
        return {
            "source": self.source,
            "real_file": str(self.real_path) if self.real_path else None,
            "cache": str(self.cache_path) if self.cache_path else None,
            "images": len(self),
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
            "mean_pixel": round(self.mean_pixel(), 6),
            "packed_megabytes": round(self.packed.nbytes / 2**20, 1),
        }


def resolve_source(source: str = "auto", real_path: str | os.PathLike | None = None) -> str:
    """What ``source="auto"`` means here: ``"real"`` if the real file is in the data folder, else ``"replica"``."""
    if source != "auto":
        return source
    real_path = Path(real_path) if real_path is not None else default_data_dir() / REAL_FILENAME
    return "real" if real_path.exists() else "replica"


def _spot_check(packed: np.ndarray, npy: Path, count: int = 32) -> None:
    """Re-render a few rows of a replica cache and compare, to catch damage a size check misses."""
    rows = np.random.default_rng(len(packed)).choice(len(packed), size=min(count, len(packed)), replace=False)
    classes = np.stack(np.unravel_index(rows, FULL_SIZES), axis=1)
    if not np.array_equal(pack_images(render_dsprites(classes, threads=1)), packed[rows]):
        raise DatasetError(f"{npy}: some images differ from the replica renderer (damaged cache)")
