"""Every figure function runs headless and returns a figure with content."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from fvae_lib import plots


def test_factor_samples(small_replica):
    fig = plots.factor_samples(small_replica)
    assert isinstance(fig, Figure) and len(fig.axes) == 5 * 8


def test_model_figures(vae, small_replica, tmp_path):
    for fig in (plots.reconstructions(vae, small_replica, n=4), plots.traversals(vae, small_replica, n_values=5),
                plots.kl_bars(np.array([2.0, 0.01, 1.0]))):
        assert isinstance(fig, Figure) and fig.axes
    path = plots.save_figure(plots.kl_bars([1.0, 0.0]), tmp_path / "k.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_traversals_mark_collapsed_latents(vae, small_replica):
    fig = plots.traversals(vae, small_replica, n_values=3)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert len(labels) == 10 and any("collapsed" in l for l in labels)  # an untrained encoder: KL ≈ 0
    assert fig._suptitle.get_text() == "latent traversals (rows ordered by KL)"
    named = plots.traversals(vae, small_replica, n_values=3, title="β-VAE, β = 4")
    assert named._suptitle.get_text().startswith("β-VAE, β = 4: latent traversals")


def test_training_curves():
    history = [{"step": s, "recon": 100.0 - s, "kl": 1.0, "tc": 0.1, "d_loss": 0.69, "d_acc": 0.5} for s in (10, 20)]
    assert isinstance(plots.training_curves(history), Figure)
    assert isinstance(plots.training_curves([{k: v for k, v in r.items() if k in ("step", "recon", "kl")} for r in history]), Figure)
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves([])


def test_metric_matrices_draws_one_heat_map_per_matrix_given():
    votes, mi, importance = np.eye(3) * 10, np.eye(3) * 0.5, np.eye(3)
    fig = plots.metric_matrices(("a", "b", "c"), votes=votes, active=[0, 1, 2], mutual_info=mi, entropy=[1, 1, 1],
                                importance=importance, title="t")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3 and all(ax.images[0].get_array().shape == (3, 3) for ax in images)
    assert len([ax for ax in plots.metric_matrices(("a", "b", "c"), importance=importance).axes if ax.images]) == 1
    with pytest.raises(ValueError, match="at least one"):
        plots.metric_matrices(("a",))
