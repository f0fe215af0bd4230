"""The metric over training: the FactorVAE metric (and, if asked, the KL decomposition) of a run's snapshots."""
import numpy as np
import pytest
import torch

from fvae_lib import trajectory
from fvae_lib.config import TrainConfig
from fvae_lib.encoding import encoder_representation
from fvae_lib.metrics import factor_vae_score
from fvae_lib.models import VAE
from fvae_lib.runs import RunFolder
from fvae_lib.trajectory import DECOMPOSITION_TERMS, write_trajectory

FEWER_VOTES = dict(batch_size=8, num_train=40, num_eval=40, num_variance_estimate=500)  # seconds, not minutes


@pytest.fixture(scope="module")
def tiny_replica():
    """A 720-image grid (3 x 3 x 5 x 4 x 4): the decomposition encodes all of it once per snapshot."""
    from fvae_lib.data import DSprites

    return DSprites(source="replica", steps={"scale": 2, "orientation": 8, "posX": 8, "posY": 8}, data_dir="/nonexistent-fvae",
                    progress=False)


def snapshot_vae(step):
    """A different untrained VAE for each step, its encoder's weights scaled up so that its codes vary (none pruned)."""
    torch.manual_seed(step)
    vae = VAE(10).eval()
    with torch.no_grad():
        for m in vae.encoder.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(3)
    return vae


@pytest.fixture
def run_with_snapshots(tmp_path, monkeypatch):
    """A run folder with snapshots at steps 10, 20, 30 and 40, scored with fewer votes."""
    monkeypatch.setattr(trajectory, "TRAJECTORY_SETTINGS", FEWER_VOTES)
    run = RunFolder(tmp_path / "r")
    run.write_config(TrainConfig.from_preset("smoke"))
    for step in (10, 20, 30, 40):
        run.save_snapshot(step, snapshot_vae(step).state_dict())
    return run


def test_every_nth_snapshot_is_scored_and_the_points_are_written_to_the_run(run_with_snapshots, tiny_replica):
    points = write_trajectory(run_with_snapshots.path, 20, tiny_replica)
    assert [p["step"] for p in points] == [20, 40] and all(set(p) == {"step", "factor_vae"} for p in points)
    for p in points:  # each point is its own snapshot's score
        own = factor_vae_score(tiny_replica, encoder_representation(snapshot_vae(p["step"])), np.random.default_rng(0), **FEWER_VOTES)
        assert p["factor_vae"] == own["eval_accuracy"], p
    assert run_with_snapshots.read_trajectory() == {"settings": FEWER_VOTES, "points": points}


def test_asked_for_it_each_point_has_the_kl_decomposition_too(run_with_snapshots, tiny_replica):
    [point] = write_trajectory(run_with_snapshots.path, 40, tiny_replica, decomposition_samples=100)
    assert point["step"] == 40 and set(DECOMPOSITION_TERMS) <= set(point) and point["avg_kl"] > 0.1
    # E_x KL(q(z|x) ‖ p(z)) = I(x; z) + TC + Σ_j KL(q(z_j) ‖ p(z_j)), within Monte Carlo error (terms rounded to 1e-4)
    terms = point["mutual_info"] + point["total_correlation"] + point["dimwise_kl"]
    assert abs(terms - point["avg_kl"]) < 4 * point["mc_error"] + 1e-3, point
    assert run_with_snapshots.read_trajectory()["settings"] == dict(FEWER_VOTES, decomposition_samples=100)
