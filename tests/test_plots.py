"""Every figure function runs headless and returns a figure with content."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from fvae_lib import display, plots
from fvae_lib.models import VAE


@pytest.fixture(scope="module")
def vae():
    import torch

    torch.manual_seed(0)
    return VAE(10).eval()


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


def test_training_curves():
    history = [{"step": s, "recon": 100.0 - s, "kl": 1.0, "tc": 0.1, "d_loss": 0.69, "d_acc": 0.5} for s in (10, 20)]
    assert isinstance(plots.training_curves(history), Figure)
    assert isinstance(plots.training_curves([{k: v for k, v in r.items() if k in ("step", "recon", "kl")} for r in history]), Figure)
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves([])


def test_latent_explorer_builds_a_slider_per_latent_and_redraws(vae, small_replica):
    import ipywidgets as widgets

    from fvae_lib.explorer import latent_explorer

    box = latent_explorer(vae, small_replica)
    sliders = [w for w in box.children[0].children if isinstance(w, widgets.FloatSlider)]
    image = box.children[1]
    assert len(sliders) == 10 and isinstance(image, widgets.Image)
    before = image.value
    assert before[:4] == b"\x89PNG"
    sliders[0].value, sliders[1].value = -3.0, 3.0  # moving sliders redraws the picture
    assert image.value[:4] == b"\x89PNG" and image.value != before
    img = plots.decode_codes(vae, [[s.value for s in sliders]])
    assert img.shape == (1, 64, 64) and 0 <= img.min() and img.max() <= 1


@pytest.fixture
def ipython_shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def test_figures_display_as_pictures_in_a_kernel_whatever_the_backend(ipython_shell):
    fig = plots.kl_bars([1.0, 0.2])
    data, _ = ipython_shell.display_formatter.format(fig)
    assert "image/png" not in data and data["text/plain"].startswith("<Figure size")  # what learners saw
    assert display.show_figures_in_notebooks()
    data, _ = ipython_shell.display_formatter.format(fig)
    assert data["image/png"][:4] == b"\x89PNG"
    assert display.show_figures_in_notebooks()  # idempotent


def test_an_inline_backends_own_figure_format_is_kept(ipython_shell):
    svg = ipython_shell.display_formatter.formatters["image/svg+xml"]
    svg.for_type(Figure, lambda fig: "<svg/>")
    assert display.show_figures_in_notebooks()
    data, _ = ipython_shell.display_formatter.format(plots.kl_bars([1.0]))
    assert data["image/svg+xml"] == "<svg/>" and "image/png" not in data


def test_outside_ipython_nothing_is_registered():
    import subprocess
    import sys

    code = "import fvae_lib.display as p, sys; assert 'IPython' not in sys.modules; print(p.show_figures_in_notebooks())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_permutation_picture_keeps_each_column_and_mixes_the_rows():
    from fvae_lib.diagrams import permutation_origins, permutation_picture

    fig = permutation_picture(batch=6, dims=4, seed=0)
    left, right = (ax.images[0].get_array() for ax in fig.axes)
    assert (left == np.arange(6)[:, None]).all()  # one code per row
    assert (np.sort(right, axis=0) == np.arange(6)[:, None]).all()  # each column holds every code once
    assert (right != right[:, :1]).any(axis=1).any()  # and rows now mix codes
    assert (right == permutation_origins(6, 4, 0)).all()
    labels = {t.get_text() for t in fig.axes[1].texts}
    assert {f"z{i},{j}" for i in range(1, 7) for j in range(1, 5)} == labels


def test_the_algorithm_2_diagram_names_both_steps_and_the_detach():
    from fvae_lib.diagrams import algorithm2_diagram

    texts = " ".join(t.get_text() for t in algorithm2_diagram().axes[0].texts)
    for phrase in ("VAE step", "D step", "permute_dims", "z.detach()", "γ · mean(logit₀ − logit₁)", "batch B′"):
        assert phrase in texts, phrase
