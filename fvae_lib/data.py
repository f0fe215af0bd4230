"""Ground-truth datasets: the data protocol, dSprites (real file or offline replica), the batch sampler.

Every consumer (the trainer, the metrics, the notebooks) sees a dataset through one small protocol,
:class:`GroundTruthData`: factor names, sizes and values, ``sample_factors(n, rng)``,
``sample_observations(factors, rng)``, ``index_of`` / ``factors_of`` in row-major order, and ``len``.

dSprites comes from one of two sources, chosen by ``source``:

* ``"real"``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``. Its structure is checked
  (keys, shapes, dtypes, the row-major class layout, the value grids) while it is streamed, never
  turned into float (2.8 GiB as uint8, 11 GiB as float32).
* ``"replica"``: an offline re-rendering that follows the reverse-engineered spec (same order, same
  values and classes; square, ellipse and heart drawn by testing pixel centres against the rotated,
  scaled shape). Over the full grid its mean pixel value is 0.04250, against 0.04249 for the real file.

Either way the images end up in one cache format: a ``.npy`` of bit-packed rows (N, 512) uint8,
377 MB for the full grid, plus a ``.json`` beside it that is written last and so marks the cache as
whole. Both are written to a temporary file and renamed into place, so a killed build never leaves
a file that a later load would accept; a damaged cache is detected on load and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch

# --------------------------------------------------------------------------------------------------
# The protocol every ground-truth dataset follows
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class GroundTruthData(Protocol):
    """A dataset with known, discrete generative factors laid out on a full row-major grid."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: list[np.ndarray]

    def __len__(self) -> int: ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, K) int64 factor classes, each drawn uniformly and independently."""

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """float32 tensor (n, C, H, W) of the images with these factor classes."""

    def index_of(self, factors: np.ndarray) -> np.ndarray: ...

    def factors_of(self, indices: np.ndarray) -> np.ndarray: ...


class FactorGridMixin:
    """``sample_factors``, ``index_of`` and ``factors_of`` for any dataset laid out row-major over
    ``factor_sizes`` (the last factor fastest), as dSprites is."""

    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, K) int64 classes, each factor uniform and independent."""
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Row-major index, the last factor fastest: sum_k factors[:, k] * prod(sizes[k+1:])."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != len(self.factor_sizes):
            raise ValueError(f"factors must have shape (n, {len(self.factor_sizes)}), got {factors.shape}")
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

    def factors_of(self, indices: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`index_of`: (n,) indices -> (n, K) int64 classes."""
        return np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=1).astype(np.int64)


class DatasetError(ValueError):
    """A dataset file or cache is missing, damaged or not what it claims to be.

    The message names the file, says what is wrong and what to do about it.
    """


# --------------------------------------------------------------------------------------------------
# dSprites: the factor grid
# --------------------------------------------------------------------------------------------------

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
REPLICA_VERSION = 1


# --------------------------------------------------------------------------------------------------
# The replica renderer
# --------------------------------------------------------------------------------------------------

_SQUARE_HALF_SIDE = 9.6  # 19.2 px side at scale 1 (0.3 of the canvas)
_ELLIPSE_AXES = (12.76, 7.22)  # semi-axes in px at scale 1, major axis horizontal at theta = 0
_WINDOW = 31  # every shape lies within 13.8 px of its centre; 31 px around floor(centre) covers it


def _heart_edges():
    """The heart polygon (200 vertices) as two monotone edges of its right half.

    The heart is symmetric in u, and along its right half v first falls from the cleft (u=0) to the
    top of the lobe, then rises to the tip. So a point is inside iff  a(v) <= |u| <= b(v), with a the
    inner edge of the lobe (only above the cleft) and b the outer edge; both are piecewise linear in
    v, exactly as the polygon's edges are, so linear interpolation between vertices is exact.
    """
    t = 2 * np.pi * np.arange(200) / 200
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    u = 0.6 * x  # 32 units across -> 19.2 px
    v = 0.215 - (19.2 / 29) * (y + 2.5)  # lobes up (negative v), tip down
    u_r, v_r = u[:101], v[:101]  # t in [0, pi]: the right half, cleft to tip
    top = int(np.argmin(v_r))
    inner_v, inner_u = v_r[: top + 1][::-1], u_r[: top + 1][::-1]  # v increasing: lobe top -> cleft
    outer_v, outer_u = v_r[top:], u_r[top:]  # v increasing: lobe top -> tip
    assert np.all(np.diff(inner_v) > 0) and np.all(np.diff(outer_v) > 0)
    return (inner_v, inner_u), (outer_v, outer_u), (u, v)


_HEART_INNER, _HEART_OUTER, HEART_POLYGON = _heart_edges()


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au = np.abs(u)
    (iv, iu), (ov, ou) = _HEART_INNER, _HEART_OUTER
    in_outer = (v >= ov[0]) & (v <= ov[-1]) & (au <= np.interp(v, ov, ou))
    in_cleft = (v < iv[-1]) & (au < np.interp(v, iv, iu))
    return in_outer & ~in_cleft


def render_dsprites(classes: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Render dSprites images from full-grid factor classes.

    Args:
        classes: (n, 5) integer classes of (shape, scale, orientation, posX, posY) on the full grid
            (sizes 3, 6, 40, 32, 32).
        threads: worker threads (numpy releases the GIL); default: all cores, at most 4.

    Returns:
        (n, 64, 64) uint8 images with values in {0, 1}; row 0 is the top, posY = 0 is the top.

    A pixel (r, c) is on when its centre (c + 0.5, r + 0.5) lies inside the shape turned by theta
    about the sprite centre (16 + 32 posX, 16 + 32 posY), boundaries inclusive. Only a 31 x 31
    window around the centre is tested, which is 4.3x less work than the whole canvas.
    """
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != 5:
        raise ValueError(f"classes must have shape (n, 5), got {classes.shape}")
    if np.any(classes < 0) or np.any(classes >= np.array(FULL_SIZES)):
        raise ValueError(f"classes out of range for the dSprites grid {FULL_SIZES}")
    n = len(classes)
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    chunk = 2048
    starts = range(0, n, chunk)
    workers = threads or min(4, os.cpu_count() or 1)
    if workers > 1 and n > chunk:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda s: _render_into(classes[s : s + chunk], out[s : s + chunk]), starts))
    else:
        for s in starts:
            _render_into(classes[s : s + chunk], out[s : s + chunk])
    return out


def _render_into(classes: np.ndarray, out: np.ndarray) -> None:
    n = len(classes)
    shape = classes[:, 0]
    scale = FULL_VALUES[1][classes[:, 1]]
    theta = np.mod(FULL_VALUES[2][classes[:, 2]], 2 * np.pi)  # 2*pi -> exactly 0
    cx = 16 + 32 * FULL_VALUES[3][classes[:, 3]]
    cy = 16 + 32 * FULL_VALUES[4][classes[:, 4]]
    c0 = np.floor(cx).astype(np.int64) - 15  # first column of the window
    r0 = np.floor(cy).astype(np.int64) - 15
    k = np.arange(_WINDOW)
    dx = (c0[:, None] + k + 0.5) - cx[:, None]  # (n, W) pixel-centre offsets
    dy = (r0[:, None] + k + 0.5) - cy[:, None]
    cos = (np.cos(theta) / scale)[:, None, None]
    sin = (np.sin(theta) / scale)[:, None, None]
    dxw, dyw = dx[:, None, :], dy[:, :, None]  # columns along the last axis, rows along the middle
    u = dxw * cos - dyw * sin  # (n, W, W) shape coordinates at scale 1
    v = dxw * sin + dyw * cos
    mask = np.zeros(u.shape, bool)
    for s, inside in enumerate((_inside_square, _inside_ellipse, _inside_heart)):
        sel = shape == s
        if sel.any():
            mask[sel] = inside(u[sel], v[sel])
    rows = (r0[:, None] + k)[:, :, None]
    cols = (c0[:, None] + k)[:, None, :]
    out[np.arange(n)[:, None, None], rows, cols] = mask


def _inside_square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE


def _inside_ellipse(u, v):
    a, b = _ELLIPSE_AXES
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


# --------------------------------------------------------------------------------------------------
# Bit packing (np.packbits order: the first pixel is the most significant bit)
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Where the data lives
# --------------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$FVAE_DATA_DIR``, else the ``data/`` folder of a source checkout, else ``~/.cache/fvae_lib``."""
    env = os.environ.get("FVAE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "data").is_dir():
        return repo / "data"
    return Path.home() / ".cache" / "fvae_lib"


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


def write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` whole and synced to a temporary file beside ``path``; the caller renames it into place."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers see all or nothing."""
    os.replace(write_temporary(path, data), path)


def grid_sizes(steps: dict[str, int] | None = None) -> tuple[int, ...]:
    """Factor sizes of the dSprites grid reduced by ``steps`` (every step-th class of the named factors)."""
    return tuple(len(g) for g in _reduce_grid([np.arange(s) for s in FULL_SIZES], steps))


def _remove_stale_temporaries(path: Path) -> None:
    for stale in path.parent.glob(f"{path.name}.tmp-*"):
        try:
            stale.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------------
# The packed cache: <name>.npy (N, 512) uint8, then <name>.json, written last, marks it whole
# --------------------------------------------------------------------------------------------------


def _write_cache(npy: Path, n: int, chunks, meta: dict, progress: bool, desc: str) -> dict:
    """Write the rows yielded by ``chunks`` (arrays (m, 512) uint8) into ``npy`` atomically.

    Returns the metadata written to the sidecar JSON (with sha256 and the count of on-pixels added).
    """
    from tqdm.auto import tqdm

    _ensure_writable(npy.parent)
    _remove_stale_temporaries(npy)
    sidecar = npy.with_suffix(".json")
    if sidecar.exists():
        sidecar.unlink()  # the old cache stops counting as whole before any byte of it changes
    tmp = npy.with_name(f"{npy.name}.tmp-{os.getpid()}")
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
        os.replace(tmp, npy)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    meta = dict(meta, rows=n, sha256=digest.hexdigest(), mean_pixel=on_pixels / (n * IMAGE_SIZE**2))
    atomic_write_bytes(sidecar, json.dumps(meta, indent=1).encode())
    return meta


def _read_cache(npy: Path, expect: dict, verify: bool) -> tuple[np.ndarray, dict]:
    """Load a cache written by :func:`_write_cache`; raise DatasetError if it is not whole and right."""
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


# --------------------------------------------------------------------------------------------------
# Reading the real npz, streamed
# --------------------------------------------------------------------------------------------------

_REAL_KEYS = ("imgs", "latents_classes", "latents_values")
_WHAT_TO_DO = (
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
        raise DatasetError(f"{path} does not exist. {_WHAT_TO_DO}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"{path} is not a readable npz archive ({err}); it may be truncated or corrupt. {_WHAT_TO_DO}") from None
    with zf:
        names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        missing = [k for k in _REAL_KEYS if k not in names]
        if missing:
            raise DatasetError(
                f"{path} does not look like dSprites: it lacks {missing} (it holds {sorted(names)}). {_WHAT_TO_DO}"
            )
        try:
            headers = {k: _npz_member_header(zf, k) for k in _REAL_KEYS}
            classes = np.load(zf.open("latents_classes.npy"))
            values = np.load(zf.open("latents_values.npy"))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise DatasetError(f"{path} is damaged: {err}. {_WHAT_TO_DO}") from None
    (ishape, fortran, idtype) = headers["imgs"]
    n = ishape[0] if ishape else 0
    if len(ishape) != 3 or ishape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or idtype != np.uint8 or fortran:
        raise DatasetError(f"{path}: imgs is {ishape} {idtype}{' (Fortran order)' if fortran else ''}, expected (N, 64, 64) uint8. {_WHAT_TO_DO}")
    for key, arr, dtype in (("latents_classes", classes, np.int64), ("latents_values", values, np.float64)):
        if arr.shape != (n, 6) or arr.dtype != dtype:
            raise DatasetError(f"{path}: {key} is {arr.shape} {arr.dtype}, expected ({n}, 6) {np.dtype(dtype)}. {_WHAT_TO_DO}")
    if n == 0:
        raise DatasetError(f"{path} holds no images. {_WHAT_TO_DO}")
    if np.any(classes[:, 0] != 0) or not np.allclose(values[:, 0], 1.0):
        raise DatasetError(f"{path}: the colour factor is not constant white, so this is not dSprites. {_WHAT_TO_DO}")
    grid = []
    for k in range(5):
        col = classes[:, k + 1]
        uniq = np.unique(col)
        if uniq.min() < 0 or uniq.max() >= FULL_SIZES[k]:
            raise DatasetError(f"{path}: {FACTOR_NAMES[k]} classes run outside 0..{FULL_SIZES[k] - 1}. {_WHAT_TO_DO}")
        if not np.allclose(values[:, k + 1], FULL_VALUES[k][col], atol=1e-6):
            raise DatasetError(f"{path}: {FACTOR_NAMES[k]} values do not match the dSprites grid. {_WHAT_TO_DO}")
        grid.append(uniq)
    sizes = tuple(len(g) for g in grid)
    if math.prod(sizes) != n:
        raise DatasetError(f"{path}: {n} images do not fill the factor grid {sizes}. {_WHAT_TO_DO}")
    expected = np.stack([g[i] for g, i in zip(grid, np.unravel_index(np.arange(n), sizes))], 1)
    if not np.array_equal(classes[:, 1:], expected):
        raise DatasetError(f"{path}: the images are not in dSprites' row-major order (posY fastest). {_WHAT_TO_DO}")
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            md5.update(block)
    return {"grid": [g.tolist() for g in grid], "n": n, "md5": md5.hexdigest()}


def _stream_real_images(path: Path, n: int, chunk: int = 8192):
    """Yield bit-packed rows of the npz's images, checking that every pixel is 0 or 1."""
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        _read_npy_header(f)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            raw = f.read(m * IMAGE_SIZE * IMAGE_SIZE)
            if len(raw) != m * IMAGE_SIZE * IMAGE_SIZE:
                raise DatasetError(f"{path}: imgs ends early, at image {start + len(raw) // 4096}; the file is truncated. {_WHAT_TO_DO}")
            imgs = np.frombuffer(raw, np.uint8).reshape(m, IMAGE_SIZE, IMAGE_SIZE)
            if imgs.max(initial=0) > 1:
                raise DatasetError(f"{path}: pixel values above 1 near image {start}; dSprites images are 0/1. {_WHAT_TO_DO}")
            yield pack_images(imgs)


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


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
            source = "real" if real_path.exists() else "replica"
        if source == "real" and not real_path.exists():
            raise DatasetError(f"{real_path} does not exist. {_WHAT_TO_DO}")
        self.source = source
        self._device_cache: dict[str, torch.Tensor] = {}
        if source == "real":
            base_grid, packed, self.cache_path, meta = self._load_real(real_path, verify, progress)
            self.real_path = real_path
        else:
            base_grid = [np.arange(s) for s in FULL_SIZES]
            packed, self.cache_path, meta = self._load_replica_for(base_grid, steps, verify, progress)
            self.real_path = None
        self.grid = _reduce_grid(base_grid, steps)
        base_sizes = tuple(len(g) for g in base_grid)
        if packed.shape[0] == math.prod(base_sizes) and self.grid is not base_grid:
            positions = _grid_classes([np.searchsorted(b, g) for b, g in zip(base_grid, self.grid)])
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
                packed, meta = _read_cache(npy, expect, verify)
                _spot_check(packed, npy)
                return packed, npy, meta
            except DatasetError as err:
                if npy.exists() or npy.with_suffix(".json").exists():
                    warnings.warn(f"rebuilding the dSprites replica cache: {err}", stacklevel=3)
            if not reduced:
                return self._build_replica(npy, expect, progress)
        # A reduced grid with no full cache: render just the images it needs, in memory.
        grid = _reduce_grid(base_grid, steps)
        classes = _grid_classes(grid)
        packed = pack_images(render_dsprites(classes))
        return packed, None, {"source": "replica", "version": REPLICA_VERSION, "rows": len(packed)}

    def _build_replica(self, npy, expect, progress):
        n = math.prod(FULL_SIZES)
        chunk = 16384

        def chunks():
            for s in range(0, n, chunk):
                idx = np.arange(s, min(n, s + chunk))
                yield pack_images(render_dsprites(np.stack(np.unravel_index(idx, FULL_SIZES), 1)))

        meta = _write_cache(npy, n, chunks(), dict(expect), progress, "building the dSprites replica")
        packed, meta = _read_cache(npy, expect, verify=False)
        return packed, npy, meta

    def _load_real(self, path, verify, progress):
        info = inspect_real_file(path)
        if info["n"] == math.prod(FULL_SIZES) and info["md5"] != REAL_MD5:
            msg = f"{path} has the structure of dSprites but md5 {info['md5']}, not the official {REAL_MD5}"
            if verify:
                raise DatasetError(msg + f". {_WHAT_TO_DO}")
            warnings.warn(msg, stacklevel=3)
        grid = [np.asarray(g) for g in info["grid"]]
        npy = self.data_dir / f"dsprites_real_{info['md5'][:12]}.npy"
        expect = {"source": "real", "md5": info["md5"], "rows": info["n"], "grid": info["grid"]}
        try:
            packed, meta = _read_cache(npy, expect, verify)
        except DatasetError as err:
            if npy.exists():
                warnings.warn(f"re-reading {path}: {err}", stacklevel=3)
            _write_cache(npy, info["n"], _stream_real_images(path, info["n"]), dict(expect), progress, f"reading {path.name}")
            packed, meta = _read_cache(npy, expect, verify=False)
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


def _reduce_grid(base_grid: list[np.ndarray], steps: dict[str, int] | None) -> list[np.ndarray]:
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


def _grid_classes(grid: Sequence[np.ndarray]) -> np.ndarray:
    """All full-grid classes of a (reduced) grid, in row-major order: (prod sizes, 5)."""
    mesh = np.meshgrid(*grid, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _spot_check(packed: np.ndarray, npy: Path, count: int = 32) -> None:
    """Re-render a few rows of a replica cache and compare, to catch damage a size check misses."""
    rows = np.random.default_rng(len(packed)).choice(len(packed), size=min(count, len(packed)), replace=False)
    classes = np.stack(np.unravel_index(rows, FULL_SIZES), axis=1)
    if not np.array_equal(pack_images(render_dsprites(classes, threads=1)), packed[rows]):
        raise DatasetError(f"{npy}: some images differ from the replica renderer (damaged cache)")


# --------------------------------------------------------------------------------------------------
# The batch sampler
# --------------------------------------------------------------------------------------------------


class BatchSampler:
    """Uniform random training batches, drawn on the training device with no DataLoader.

    The packed images live on ``device`` (377 MB for the full grid); each batch is an index draw
    from a ``torch.Generator`` on that device, a gather and a bit-unpack, so on a GPU no batch ever
    crosses the PCIe bus and nothing synchronises with the host. ``state_dict`` holds the generator
    state, so a resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, data: DSprites, batch_size: int, device: str | torch.device = "cpu", seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        if batch_size < 1 or batch_size > len(data):
            raise ValueError(f"batch_size must be between 1 and the dataset size {len(data)}, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.dtype = dtype
        self.packed = data.packed_on(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def indices(self) -> torch.Tensor:
        return torch.randint(len(self.packed), (self.batch_size,), generator=self.generator, device=self.device)

    def sample(self) -> torch.Tensor:
        """(batch_size, 1, 64, 64) images of 0/1 values on the device."""
        return unpack_images(self.packed[self.indices()], self.dtype)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


# --------------------------------------------------------------------------------------------------
# A toy ground-truth dataset whose observations are its factors
# --------------------------------------------------------------------------------------------------


class FactorObservations(FactorGridMixin):
    """Observations that *are* the factors: float32 (n, K), factor k's class scaled to [0, 1].

    The ideal representation of it is the identity, so it calibrates metrics (an identity code should
    score near 1, a random one near chance) and lets notebooks show a metric without training a model.
    """

    def __init__(self, factor_sizes: Sequence[int] = (3, 6, 10, 8, 8), factor_names: Sequence[str] | None = None):
        if any(int(s) < 1 for s in factor_sizes):
            raise ValueError(f"factor sizes must be >= 1, got {tuple(factor_sizes)}")
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_names = tuple(factor_names) if factor_names else tuple(f"v{k}" for k in range(len(self.factor_sizes)))
        self.factor_values = [np.linspace(0.0, 1.0, s) for s in self.factor_sizes]

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        factors = np.asarray(factors)
        scaled = [self.factor_values[k][factors[:, k]] for k in range(len(self.factor_sizes))]
        return torch.from_numpy(np.stack(scaled, axis=1).astype(np.float32))
