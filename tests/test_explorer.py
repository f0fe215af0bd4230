"""The latent explorer: a slider per latent, and the picture redrawn as they move."""
from fvae_lib import plots


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
