"""The latent explorer: a slider per latent and the decoder's picture, redrawn as a slider moves (core ipywidgets).

Built on the same decoding as the static traversals (:func:`fvae_lib.plots.decode_codes`), so what the sliders
show is what :func:`fvae_lib.plots.traversals` draws.
"""
from __future__ import annotations

import numpy as np

from .display import figure_png, new_figure
from .plots import decode_codes, encode_stats


def decoded_image_png(vae, code, size_inches: float = 2.4) -> bytes:
    """PNG bytes of the decoder's Bernoulli mean for one latent code (what the explorer displays)."""
    fig = new_figure(figsize=(size_inches, size_inches))
    ax = fig.subplots()
    ax.imshow(decode_codes(vae, [code])[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    return figure_png(fig)


def latent_explorer(vae, data, rng: np.random.Generator | None = None, limit: float = 3.0):
    """A slider per latent and the decoded image, updating as the sliders move.

    Starts at the mean code of one dataset image. The picture is an ``ipywidgets.Image`` holding PNG
    bytes, so it shows under any matplotlib backend and touches no pyplot state. Needs a live kernel;
    :func:`traversals` is the static figure of the same decoding (:func:`decode_codes`), for a notebook
    read without one.
    """
    import ipywidgets as widgets

    rng = rng or np.random.default_rng(0)
    x = data.sample_observations(data.sample_factors(256, rng))
    mu, kl = encode_stats(vae, x)
    start = mu[0].numpy()
    sliders = [widgets.FloatSlider(value=float(v), min=-limit, max=limit, step=0.05,
                                   description=f"z{j} ({kl[j]:.1f})", continuous_update=True,
                                   style={"description_width": "70px"}) for j, v in enumerate(start)]
    image = widgets.Image(format="png", layout=widgets.Layout(width="240px"))

    def redraw(_=None):
        image.value = decoded_image_png(vae, [s.value for s in sliders])

    for s in sliders:
        s.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(sliders), image])
