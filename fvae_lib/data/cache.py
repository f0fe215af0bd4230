"""Where dSprites lives on disk, and its one cache format.

A ``.npy`` of bit-packed rows (N, 512) uint8, 377 MB for the full grid, plus a ``.json`` beside it that is
written last and so marks the cache as whole. Both go through a temporary file and a rename
(:mod:`fvae_lib.storage`), so a killed build never leaves a file a later load would accept; a damaged cache
is detected on load."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from ..paths import configured_folder
from ..storage import atomic_write_bytes, replace, temporary_path
from .protocol import DatasetError
from .spec import IMAGE_SIZE, PACKED_BYTES


_SHIFTS: dict[torch.device, torch.Tensor] = {}


def pack_images(images: np.ndarray) -> np.ndarray:
    """(n, 64, 64) {0,1} uint8 -> (n, 512) uint8."""
    return np.packbits(images.reshape(len(images), -1), axis=1)


def unpack_images(packed: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, 512) uint8 tensor on any device -> (n, 1, 64, 64) tensor of 0/1 values in ``dtype``."""
    shifts = _SHIFTS.get(packed.device)
    if shifts is None:
        shifts = _SHIFTS[packed.device] = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(-1) >> shifts) & 1  # (n, 512, 8)
    return bits.view(len(packed), 1, IMAGE_SIZE, IMAGE_SIZE).to(dtype)


def default_data_dir() -> Path:
    """``$FVAE_DATA_DIR``, else the ``data/`` folder of a source checkout, else ``~/.cache/fvae_lib``."""
    return configured_folder("FVAE_DATA_DIR", "data", Path.home() / ".cache" / "fvae_lib", existing=True)


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise DatasetError(
            f"cannot write the dataset cache into {folder}: {err.strerror or err}. "
            "Make the folder writable, or point FVAE_DATA_DIR (or --data-dir) at a writable folder."
        ) from None


def write_cache(npy: Path, n: int, chunks, meta: dict, progress: bool, desc: str) -> dict:
    """Write the rows yielded by ``chunks`` (arrays (m, 512) uint8) into ``npy`` atomically.

    Returns the metadata written to the sidecar JSON (with sha256 and the count of on-pixels added).
    """
    from tqdm.auto import tqdm

    _ensure_writable(npy.parent)
    sidecar = npy.with_suffix(".json")
    if sidecar.exists():
        sidecar.unlink()  # the old cache stops counting as whole before any byte of it changes
    tmp = temporary_path(npy)
    digest = hashlib.sha256()
    on_pixels = 0
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, PACKED_BYTES))
        pos = 0
        with tqdm(total=n, desc=desc, unit="img", unit_scale=True, disable=not progress, leave=False) as bar:
            for rows in chunks:
                out[pos : pos + len(rows)] = rows
                digest.update(np.ascontiguousarray(rows).data)
                on_pixels += int(np.unpackbits(rows).sum(dtype=np.int64)) if len(rows) else 0
                pos += len(rows)
                bar.update(len(rows))
        if pos != n:
            raise RuntimeError(f"cache writer produced {pos} rows, expected {n}")
        out.flush()
        del out
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        replace(tmp, npy)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    meta = dict(meta, rows=n, sha256=digest.hexdigest(), mean_pixel=on_pixels / (n * IMAGE_SIZE**2))
    atomic_write_bytes(sidecar, json.dumps(meta, indent=1).encode())
    return meta


def read_cache(npy: Path, expect: dict, verify: bool) -> tuple[np.ndarray, dict]:
    """Load a cache written by :func:`write_cache`; raise DatasetError if it is not whole and right."""
    sidecar = npy.with_suffix(".json")
    if not npy.exists() or not sidecar.exists():
        raise DatasetError(f"{npy} is missing or was never completed")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{sidecar} is unreadable ({err})") from None
    for key, value in expect.items():
        if meta.get(key) != value:
            raise DatasetError(f"{sidecar} records {key}={meta.get(key)!r}, expected {value!r}")
    n = meta["rows"]
    try:
        arr = np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DatasetError(f"{npy} is damaged: {err}") from None
    if arr.shape != (n, PACKED_BYTES) or arr.dtype != np.uint8:
        raise DatasetError(f"{npy} holds {arr.shape} {arr.dtype}, expected ({n}, {PACKED_BYTES}) uint8")
    expected_size = arr.offset + n * PACKED_BYTES
    if npy.stat().st_size != expected_size:
        raise DatasetError(f"{npy} is {npy.stat().st_size} bytes, expected {expected_size}")
    arr = np.array(arr)  # into memory: 377 MB for the full grid
    if verify:
        got = hashlib.sha256(arr.data).hexdigest()
        if got != meta["sha256"]:
            raise DatasetError(f"{npy} does not match the checksum recorded when it was built")
    return arr, meta
