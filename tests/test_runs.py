"""The run folder: checkpoints that open with weights_only and fall back when damaged, snapshots, the model
rebuilt from its weights."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fvae_lib.config import TrainConfig
from fvae_lib.models import VAE
from fvae_lib.runs import RunFolder, load_model
from fvae_lib.train import Trainer

REPO = Path(__file__).resolve().parent.parent


def load_checkpoint(run):
    return RunFolder(run).load_checkpoint()


def smoke(**overrides):
    return TrainConfig.from_preset("smoke", **{"threads": 1, **overrides})


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_opens_with_weights_only_and_loads_the_model(tmp_path, small_replica):
    Trainer(smoke(iterations=20), tmp_path / "r", data=small_replica, progress=False).run()
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 20 and {"vae", "disc", "opt_vae", "opt_d", "sampler", "noise", "config"} <= set(state)
    vae, config = load_model(tmp_path / "r")
    assert config.model == "factorvae" and not vae.training

def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, small_replica):
    run = tmp_path / "r"
    Trainer(smoke(), run, data=small_replica, progress=False).run()  # saves at 20 and 40
    (run / "checkpoint.pt").write_bytes(b"half a file")
    assert load_checkpoint(run)["step"] == 20

@pytest.mark.slow
def test_resuming_with_every_checkpoint_damaged_says_so_plainly(tmp_path, small_replica):
    run = tmp_path / "r"
    Trainer(smoke(), run, data=small_replica, progress=False).run()
    for name in ("checkpoint.pt", "checkpoint-prev.pt"):
        (run / name).write_bytes((run / name).read_bytes()[:5000])  # cut short, as by a full disk
    proc = subprocess.run([sys.executable, "-m", "fvae_lib", "train", "--out", str(run), "--resume", "--no-progress"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "checkpoint.pt is damaged or incomplete" in proc.stderr and "config.json" in proc.stderr
    assert "weights_only=False" not in proc.stderr  # torch's advice is wrong for a damaged file
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr

def test_snapshots_are_kept_and_load(tmp_path, small_replica):
    from fvae_lib.runs import RunFolder

    Trainer(smoke(), tmp_path / "r", data=small_replica, progress=False).run()
    snaps = RunFolder(tmp_path / "r").load_snapshots()
    assert [s for s, _ in snaps] == [20, 40]
    final, _ = load_model(tmp_path / "r")
    assert _same(snaps[-1][1].state_dict(), final.state_dict())


def test_a_vae_is_rebuilt_from_its_saved_weights_whatever_its_shape():
    from fvae_lib.runs import vae_for_state

    for z_dim, channels, hidden in ((10, 1, 128), (6, 3, 256)):
        state = VAE(z_dim, channels=channels, hidden=hidden).state_dict()
        rebuilt = vae_for_state(state)
        rebuilt.load_state_dict(state)  # raises on any shape mismatch
        assert (rebuilt.encoder.z_dim, rebuilt.encoder.convs[0].in_channels) == (z_dim, channels)
