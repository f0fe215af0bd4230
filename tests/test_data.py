"""dSprites: the replica against the spec's real-frame targets, the real-file loader and its errors,
the atomic cache, the reduced grid and the batch sampler."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fvae_lib.data import (
    FACTOR_NAMES,
    FULL_SIZES,
    FULL_VALUES,
    HEART_POLYGON,
    REAL_FILENAME,
    REAL_MEAN_PIXEL,
    BatchSampler,
    DatasetError,
    DSprites,
    GroundTruthData,
    render_dsprites,
)
from fvae_lib.data.cache import read_cache
from fvae_lib.data.replica import inside_heart

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the grid and the index layout


def test_index_round_trip_on_full_grid(full_replica):
    n = len(full_replica)
    assert n == 737280 and full_replica.factor_sizes == FULL_SIZES
    idx = np.arange(n)
    factors = full_replica.factors_of(idx)
    np.testing.assert_array_equal(full_replica.index_of(factors), idx)
    # the real file's bases (colour dropped): posY fastest
    base = np.array([245760, 40960, 1024, 32, 1])
    np.testing.assert_array_equal(factors @ base, idx)
    assert tuple(factors[1]) == (0, 0, 0, 0, 1) and tuple(factors[32]) == (0, 0, 0, 1, 0)


def test_factor_values_match_the_real_grid(full_replica):
    vals = full_replica.factor_values
    np.testing.assert_allclose(vals[0], [1, 2, 3])
    np.testing.assert_allclose(vals[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert len(vals[2]) == 40 and vals[2][0] == 0 and np.isclose(vals[2][-1], 2 * np.pi)
    np.testing.assert_allclose(np.diff(vals[2]), 2 * np.pi / 39)
    for k in (3, 4):
        np.testing.assert_allclose(vals[k], np.arange(32) / 31)
    assert isinstance(full_replica, GroundTruthData)


# ---------------------------------------------------------------- the replica against real frames


@pytest.mark.parametrize(
    "shape, counts, tolerance",
    [
        (0, [100, 144, 196, 256, 324, 400], [0] * 6),
        (1, [76, 104, 144, 184, 228, 288], [0] * 6),
        (2, [58, 84, 108, 140, 182, 222], [0, 0, 0, 2, 2, 0]),  # spec: replica off by 2 px at 0.8, 0.9
    ],
)
def test_pixel_counts_match_real_frames(shape, counts, tolerance):
    imgs = render_dsprites(np.array([[shape, s, 0, 0, 0] for s in range(6)]))
    got = imgs.reshape(6, -1).sum(1)
    assert np.all(np.abs(got - np.array(counts)) <= np.array(tolerance)), got


@pytest.mark.parametrize(
    "classes, rows, cols",
    [
        ((0, 5, 0, 0, 0), (6, 25), (6, 25)),
        ((1, 5, 0, 0, 0), (9, 22), (3, 28)),
        ((2, 5, 0, 0, 0), (7, 23), (6, 25)),
        ((2, 5, 0, 31, 31), (39, 55), (38, 57)),
    ],
)
def test_bounding_boxes_match_real_frames(classes, rows, cols):
    r, c = np.nonzero(render_dsprites(np.array([classes]))[0])
    assert (r.min(), r.max()) == rows and (c.min(), c.max()) == cols


def test_orientation_0_and_39_are_the_same_image(small_replica):
    f = small_replica.sample_factors(300, np.random.default_rng(1))
    full = small_replica.full_classes(f)
    a, b = full.copy(), full.copy()
    a[:, 2], b[:, 2] = 0, 39
    np.testing.assert_array_equal(render_dsprites(a), render_dsprites(b))


def test_heart_test_agrees_with_point_in_polygon():
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(0)
    pts = rng.uniform(-11, 11, size=(200000, 2))
    u, v = HEART_POLYGON
    ref = MplPath(np.stack([u, v], 1)).contains_points(pts)
    got = inside_heart(pts[:, 0], pts[:, 1])
    # they may differ only on the boundary itself, which random points essentially never hit
    assert (ref != got).sum() <= 2
    assert 0.4 < got.mean() < 0.8  # the heart fills about half of its box


def test_mean_pixel_of_random_images_is_near_the_real_files():
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, s, 20000) for s in FULL_SIZES], 1)
    # 20,000 images give a standard error of about 1.4e-4
    assert abs(render_dsprites(classes).mean() - REAL_MEAN_PIXEL) < 6e-4


def test_full_replica_mean_pixel_is_the_real_files(full_replica):
    assert abs(full_replica.mean_pixel() - REAL_MEAN_PIXEL) / REAL_MEAN_PIXEL < 5e-4


def test_replica_images_are_binary_and_centred(small_replica):
    x = small_replica.sample_observations(np.array([[0, 5, 0, 0, 0], [0, 5, 0, 7, 7]]))
    assert x.dtype == torch.float32 and x.shape == (2, 1, 64, 64)
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    r, c = np.nonzero(x[0, 0].numpy())
    assert abs(r.mean() - 15.5) < 0.6 and abs(c.mean() - 15.5) < 0.6  # posX = posY = 0: centre (16, 16)


# ---------------------------------------------------------------- reduced grids


def test_reduced_grid_agrees_with_the_full_grid(full_replica, small_replica):
    assert small_replica.factor_sizes == (3, 6, 10, 8, 8)
    np.testing.assert_allclose(small_replica.factor_values[2], FULL_VALUES[2][::4])
    f = small_replica.sample_factors(64, np.random.default_rng(2))
    full_index = full_replica.index_of(small_replica.full_classes(f))
    assert torch.equal(small_replica.sample_observations(f), full_replica.images(full_index))
    # the same reduced grid sliced from the full cache rather than rendered
    sliced = DSprites(source="replica", steps={"orientation": 4, "posX": 4, "posY": 4}, progress=False)
    assert np.array_equal(sliced.packed, small_replica.packed)


def test_bad_steps_are_refused():
    with pytest.raises(ValueError, match="unknown factors"):
        DSprites(source="replica", steps={"colour": 2}, progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        DSprites(source="replica", steps={"posX": 0}, progress=False)


# ---------------------------------------------------------------- the real file: a small one of the same schema

SUBGRID = [np.arange(3), np.array([0, 5]), np.array([0, 20]), np.array([0, 15, 31]), np.array([0, 31])]


def write_real_like(path, grid=SUBGRID, **override):
    mesh = np.meshgrid(*grid, indexing="ij")
    classes5 = np.stack([m.ravel() for m in mesh], 1)
    n = len(classes5)
    classes = np.concatenate([np.zeros((n, 1), np.int64), classes5], 1).astype(np.int64)
    values = np.concatenate([np.ones((n, 1))] + [FULL_VALUES[k][classes5[:, k]][:, None] for k in range(5)], 1)
    arrays = {
        "imgs": render_dsprites(classes5),
        "latents_classes": classes,
        "latents_values": values,
        "metadata": np.array({"latents_sizes": np.array([1, 3, 6, 40, 32, 32])}, dtype=object),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return arrays


def test_real_schema_file_loads(tmp_path):
    path = tmp_path / REAL_FILENAME
    arrays = write_real_like(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a first load of a good file is silent
        data = DSprites(source="auto", data_dir=tmp_path, progress=False)
    assert data.source == "real" and data.factor_sizes == (3, 2, 2, 3, 2)
    np.testing.assert_allclose(data.factor_values[1], [0.5, 1.0])
    got = data.images(np.arange(len(data))).numpy()[:, 0].astype(np.uint8)
    np.testing.assert_array_equal(got, arrays["imgs"])
    # second load comes from the packed cache and agrees
    again = DSprites(source="real", path=path, data_dir=tmp_path, progress=False)
    assert again.cache_path == data.cache_path and np.array_equal(again.packed, data.packed)
    # reduced grids work on the real source too
    sub = DSprites(source="real", path=path, data_dir=tmp_path, steps={"posX": 2}, progress=False)
    assert sub.factor_sizes == (3, 2, 2, 2, 2)
    np.testing.assert_array_equal(sub.grid[3], [0, 31])


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(os.urandom(5000))


BROKEN = {
    "truncated": (lambda p: (write_real_like(p), _truncate(p)), "not a readable npz|truncated|damaged"),
    "not a zip": (lambda p: _garbage(p), "not a readable npz"),
    "wrong keys": (lambda p: write_real_like(p, imgs=None, images=np.zeros((72, 64, 64), np.uint8)), "does not look like dSprites"),
    "another dataset": (
        lambda p: np.savez(p, images=np.zeros((4, 64, 64, 3), np.uint8), labels=np.zeros((4, 6))),
        "does not look like dSprites",
    ),
    "wrong image shape": (lambda p: write_real_like(p, imgs=np.zeros((72, 32, 32), np.uint8)), r"expected \(N, 64, 64\) uint8"),
    "float images": (lambda p: write_real_like(p, imgs=np.zeros((72, 64, 64), np.float32)), r"expected \(N, 64, 64\) uint8"),
    "wrong classes dtype": (
        lambda p: write_real_like(p, latents_classes=np.zeros((72, 6), np.float32)), "latents_classes is"
    ),
    "wrong row count": (lambda p: write_real_like(p, imgs=np.zeros((71, 64, 64), np.uint8)), "latents_classes is"),
    "shuffled rows": (
        lambda p: write_real_like(p, latents_classes=_shuffled_classes(), latents_values=_values_of(_shuffled_classes())),
        "row-major",
    ),
    "0-255 pixels": (lambda p: write_real_like(p, imgs=np.full((72, 64, 64), 255, np.uint8)), "pixel values above 1"),
    "colour varies": (lambda p: write_real_like(p, latents_values=_values_of(_classes(), colour=0.5)), "colour factor"),
}


def _classes():
    mesh = np.meshgrid(*SUBGRID, indexing="ij")
    c5 = np.stack([m.ravel() for m in mesh], 1)
    return np.concatenate([np.zeros((len(c5), 1), np.int64), c5], 1)


def _shuffled_classes():
    return _classes()[np.random.default_rng(0).permutation(72)]


def _values_of(classes, colour=1.0):
    return np.concatenate([np.full((len(classes), 1), colour)] + [FULL_VALUES[k][classes[:, k + 1]][:, None] for k in range(5)], 1)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_real_files_give_one_clear_error(tmp_path, case):
    make, pattern = BROKEN[case]
    path = tmp_path / "dsprites.npz"
    make(path)
    with pytest.raises(DatasetError, match=pattern) as err:
        DSprites(source="real", path=path, data_dir=tmp_path / "cache", progress=False)
    msg = str(err.value)
    assert str(path) in msg and "--source replica" in msg
    assert not list((tmp_path / "cache").glob("*.json")), "nothing half-written may be left to load"


def test_missing_real_file_says_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*--source replica"):
        DSprites(source="real", data_dir=tmp_path, progress=False)


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    write_real_like(tmp_path / REAL_FILENAME)
    with pytest.raises(DatasetError, match="cannot write the dataset cache.*FVAE_DATA_DIR"):
        DSprites(source="real", path=tmp_path / REAL_FILENAME, data_dir=blocker / "sub", progress=False)


# ---------------------------------------------------------------- the cache survives kills and damage


@pytest.mark.slow
def test_build_killed_mid_write_leaves_nothing_loadable_and_is_rebuilt(tmp_path, full_replica):
    code = "from fvae_lib.data import DSprites; DSprites(source='replica', data_dir=%r, progress=False)" % str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.stat().st_size > (1 << 20) for p in tmp_path.glob("*.tmp-*")):
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob("*.tmp-*")), "the kill should have interrupted a write in progress"
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.npy"))
    rebuilt = DSprites(source="replica", data_dir=tmp_path, progress=False)
    assert np.array_equal(rebuilt.packed, full_replica.packed)
    assert not list(tmp_path.glob("*.tmp-*")), "stale temporaries are cleaned up"


@pytest.mark.slow
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, full_replica):
    src = full_replica.cache_path
    npy, sidecar = tmp_path / src.name, tmp_path / src.with_suffix(".json").name
    sidecar.write_bytes(src.with_suffix(".json").read_bytes())
    npy.write_bytes(src.read_bytes()[: src.stat().st_size - 4096])  # truncated by a bad copy
    with pytest.warns(UserWarning, match="rebuilding"):
        data = DSprites(source="replica", data_dir=tmp_path, progress=False)
    assert np.array_equal(data.packed, full_replica.packed)
    # a flipped byte keeps the size right; the recorded checksum still catches it
    with open(npy, "r+b") as f:
        f.seek(npy.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    expect = json.loads(sidecar.read_text())
    with pytest.raises(DatasetError, match="checksum"):
        read_cache(npy, {"rows": expect["rows"]}, verify=True)


# ---------------------------------------------------------------- the sampler


def test_sampler_covers_factors_uniformly(small_replica):
    sampler = BatchSampler(small_replica, batch_size=64, seed=3)
    idx = torch.cat([sampler.indices() for _ in range(500)]).numpy()  # 32,000 draws
    factors = small_replica.factors_of(idx)
    for k, size in enumerate(small_replica.factor_sizes):
        counts = np.bincount(factors[:, k], minlength=size)
        expected = len(idx) / size
        chi2 = ((counts - expected) ** 2 / expected).sum()
        # chi-square with size-1 dof: mean size-1, sd sqrt(2(size-1)); 6 sd is a safe bound
        assert chi2 < (size - 1) + 6 * np.sqrt(2 * (size - 1)), (FACTOR_NAMES[k], counts)


def test_sampler_batches_are_images_on_the_device_and_reproducible(small_replica):
    sampler = BatchSampler(small_replica, batch_size=16, seed=7)
    state = sampler.state_dict()
    x = sampler.sample()
    assert x.shape == (16, 1, 64, 64) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    idx = sampler.indices()
    sampler.load_state_dict(state)
    assert torch.equal(sampler.sample(), x) and torch.equal(sampler.indices(), idx)
    # the batch is exactly the dataset's images at the drawn indices
    sampler.load_state_dict(state)
    assert torch.equal(small_replica.images(sampler.indices()), x)
    assert BatchSampler(small_replica, 8, dtype=torch.bfloat16).sample().dtype == torch.bfloat16


def test_sampler_refuses_a_batch_larger_than_the_dataset(small_replica):
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(small_replica, batch_size=len(small_replica) + 1)
