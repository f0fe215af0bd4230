"""DeepMind's real dSprites file, checked and streamed: keys, shapes, dtypes, the row-major class layout and
the value grids are verified as it is read, and the images are never turned into float (2.8 GiB as
uint8, 11 GiB as float32)."""
from __future__ import annotations

import hashlib
import math
import zipfile
from pathlib import Path

import numpy as np

from .cache import pack_images
from .protocol import DatasetError
from .spec import FACTOR_NAMES, FULL_SIZES, FULL_VALUES, IMAGE_SIZE, REAL_FILENAME, REAL_MD5


_REAL_KEYS = ("imgs", "latents_classes", "latents_values")
HOW_TO_GET_THE_FILE = (
    f"Place the real {REAL_FILENAME} (md5 {REAL_MD5}) in the data folder or pass its path, "
    "or use --source replica to build the offline replica."
)


def _read_npy_header(f):
    """(shape, fortran_order, dtype) of an open .npy stream, leaving it at the first data byte."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _npz_member_header(zf: zipfile.ZipFile, key: str):
    with zf.open(f"{key}.npy") as f:
        return _read_npy_header(f)


def inspect_real_file(path: Path) -> dict:
    """Check a dSprites npz without decompressing its images; return its grid and md5.

    Raises DatasetError naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist. {HOW_TO_GET_THE_FILE}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"{path} is not a readable npz archive ({err}); it may be truncated or corrupt. {HOW_TO_GET_THE_FILE}") from None
    with zf:
        names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        missing = [k for k in _REAL_KEYS if k not in names]
        if missing:
            raise DatasetError(
                f"{path} does not look like dSprites: it lacks {missing} (it holds {sorted(names)}). {HOW_TO_GET_THE_FILE}"
            )
        try:
            headers = {k: _npz_member_header(zf, k) for k in _REAL_KEYS}
            classes = np.load(zf.open("latents_classes.npy"))
            values = np.load(zf.open("latents_values.npy"))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise DatasetError(f"{path} is damaged: {err}. {HOW_TO_GET_THE_FILE}") from None
    (ishape, fortran, idtype) = headers["imgs"]
    n = ishape[0] if ishape else 0
    if len(ishape) != 3 or ishape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or idtype != np.uint8 or fortran:
        raise DatasetError(f"{path}: imgs is {ishape} {idtype}{' (Fortran order)' if fortran else ''}, expected (N, 64, 64) uint8. {HOW_TO_GET_THE_FILE}")
    for key, arr, dtype in (("latents_classes", classes, np.int64), ("latents_values", values, np.float64)):
        if arr.shape != (n, 6) or arr.dtype != dtype:
            raise DatasetError(f"{path}: {key} is {arr.shape} {arr.dtype}, expected ({n}, 6) {np.dtype(dtype)}. {HOW_TO_GET_THE_FILE}")
    if n == 0:
        raise DatasetError(f"{path} holds no images. {HOW_TO_GET_THE_FILE}")
    if np.any(classes[:, 0] != 0) or not np.allclose(values[:, 0], 1.0):
        raise DatasetError(f"{path}: the colour factor is not constant white, so this is not dSprites. {HOW_TO_GET_THE_FILE}")
    grid = []
    for k in range(5):
        col = classes[:, k + 1]
        uniq = np.unique(col)
        if uniq.min() < 0 or uniq.max() >= FULL_SIZES[k]:
            raise DatasetError(f"{path}: {FACTOR_NAMES[k]} classes run outside 0..{FULL_SIZES[k] - 1}. {HOW_TO_GET_THE_FILE}")
        if not np.allclose(values[:, k + 1], FULL_VALUES[k][col], atol=1e-6):
            raise DatasetError(f"{path}: {FACTOR_NAMES[k]} values do not match the dSprites grid. {HOW_TO_GET_THE_FILE}")
        grid.append(uniq)
    sizes = tuple(len(g) for g in grid)
    if math.prod(sizes) != n:
        raise DatasetError(f"{path}: {n} images do not fill the factor grid {sizes}. {HOW_TO_GET_THE_FILE}")
    expected = np.stack([g[i] for g, i in zip(grid, np.unravel_index(np.arange(n), sizes))], 1)
    if not np.array_equal(classes[:, 1:], expected):
        raise DatasetError(f"{path}: the images are not in dSprites' row-major order (posY fastest). {HOW_TO_GET_THE_FILE}")
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            md5.update(block)
    return {"grid": [g.tolist() for g in grid], "n": n, "md5": md5.hexdigest()}


def stream_real_images(path: Path, n: int, chunk: int = 8192):
    """Yield bit-packed rows of the npz's images, checking that every pixel is 0 or 1."""
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        _read_npy_header(f)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            raw = f.read(m * IMAGE_SIZE * IMAGE_SIZE)
            if len(raw) != m * IMAGE_SIZE * IMAGE_SIZE:
                raise DatasetError(f"{path}: imgs ends early, at image {start + len(raw) // 4096}; the file is truncated. {HOW_TO_GET_THE_FILE}")
            imgs = np.frombuffer(raw, np.uint8).reshape(m, IMAGE_SIZE, IMAGE_SIZE)
            if imgs.max(initial=0) > 1:
                raise DatasetError(f"{path}: pixel values above 1 near image {start}; dSprites images are 0/1. {HOW_TO_GET_THE_FILE}")
            yield pack_images(imgs)
