import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def full_replica():
    """The full 737,280-image replica, from the default data folder (built there once if missing)."""
    from fvae_lib.data import DSprites

    return DSprites(source="replica", progress=False)


@pytest.fixture(scope="session")
def small_replica():
    """A reduced grid (3 x 6 x 10 x 8 x 8 = 11,520 images) rendered in memory."""
    from fvae_lib.data import DSprites

    return DSprites(source="replica", steps={"orientation": 4, "posX": 4, "posY": 4}, data_dir="/nonexistent-fvae", progress=False)


@pytest.fixture(scope="module")
def vae():
    """An untrained VAE (seed 0) in eval mode, one per test module (test_plots, test_explorer)."""
    import torch

    from fvae_lib.models import VAE

    torch.manual_seed(0)
    return VAE(10).eval()


# A process that holds a folder's lock (fvae_lib.storage.FolderLock) until a line arrives on its stdin, or says
# "busy ..." if another process holds it.
HOLD = """
import sys
from fvae_lib.storage import FolderLock, FolderBusy
try:
    with FolderLock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.readline()
except FolderBusy as err:
    print("busy", err, flush=True)
"""


@pytest.fixture
def hold_script() -> str:
    return HOLD


@pytest.fixture
def holder():
    """Start a process that holds a folder's lock until told to stop (or killed); yields start(folder) -> Popen."""
    started = []

    def start(folder):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=Path(__file__).resolve().parent.parent)
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs folder of this test's own (``$FVAE_RUNS_DIR``)."""
    monkeypatch.setenv("FVAE_RUNS_DIR", str(tmp_path))
    return tmp_path
