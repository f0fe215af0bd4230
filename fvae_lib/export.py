"""Trained decoders for a web page: ONNX exports and the data of the book's latent explorer.

    export_decoder(vae, "betavae_b4.onnx")          # z (n, d) -> Bernoulli means (n, 64, 64), float32
    onnx_decode("betavae_b4.onnx", codes)           # the same file run by onnxruntime (Python), for checks
    write_explorer("site/_static/explorer", ["betavae_b4", "factorvae_g35"])   # .onnx files + explorer.json

The rendered book (``make book``, :mod:`fvae_lib.book`) runs the exported decoders in the reader's browser with
onnxruntime-web: one slider per latent, the picture redrawn as a slider moves. The page draws
``round(255 * mean)`` per pixel; what the Python side computes is :func:`fvae_lib.plots.decode_codes`, the
decoding the notebooks' traversals and widget explorer use. The exported graph includes the sigmoid, so the page
does no arithmetic of its own. Needs the ``book`` extra (``onnx``, ``onnxscript``; ``onnxruntime`` for
:func:`onnx_decode`).
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .storage import atomic_write_bytes

# The explorer's start images: one of each shape, and one shape off-centre and turned, as full-grid classes
# (shape, scale, orientation, posX, posY). They are rendered by the replica, which is what the shipped reference
# models were trained on.
START_IMAGES = (
    ("square", (0, 3, 0, 16, 16)),
    ("ellipse", (1, 5, 5, 16, 16)),
    ("heart", (2, 5, 0, 16, 16)),
    ("heart, moved and turned", (2, 3, 10, 6, 24)),
)
EXPLORER_MODELS = ("betavae_b4", "factorvae_g35")
SLIDER_LIMIT = 3.0  # each slider spans [-3, 3], as in notebook 05's widget explorer (fvae_lib.explorer)


class DecoderMean(nn.Module):
    """z (n, d) -> the decoder's Bernoulli means (n, 64, 64): sigmoid of the logits, channel dropped."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))[:, 0]


def export_decoder(vae, path: str | os.PathLike) -> Path:
    """Write ``vae``'s decoder as an ONNX file: input ``z`` (batch, z_dim), output ``image`` (batch, 64, 64).

    float32 on the CPU, whatever ``vae`` is on; the batch size is free. Written to a temporary file and renamed.
    """
    try:
        import onnxscript  # noqa: F401 -- torch.onnx's exporter needs it
    except ImportError:
        raise ImportError("exporting a decoder needs the book extra: pip install -e '.[book]'") from None
    path = Path(path)
    z_dim = vae.decoder.fc[0].in_features
    module = DecoderMean(_cpu_float_copy(vae.decoder)).eval()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # its notes on torchvision's ops, absent here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecation notes, not ours to act on
        program = torch.onnx.export(module, (torch.zeros(2, z_dim),), dynamo=True, input_names=["z"],
                                    output_names=["image"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    opset_version=18, verbose=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, program.model_proto.SerializeToString())
    return path


def _cpu_float_copy(decoder: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(decoder).to("cpu", torch.float32).to(memory_format=torch.contiguous_format)


def onnx_decode(path: str | os.PathLike, codes) -> np.ndarray:
    """Run an exported decoder with onnxruntime: the Bernoulli means (n, 64, 64) of ``codes`` (n, d)."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("running an exported decoder needs onnxruntime (the book extra: pip install -e '.[book]')") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"z": np.asarray(codes, dtype=np.float32)})[0]


def start_images() -> np.ndarray:
    """The explorer's start images, (len(START_IMAGES), 64, 64) of 0/1."""
    from .data.replica import render_dsprites

    return render_dsprites(np.array([classes for _, classes in START_IMAGES]), threads=1)


def explorer_model(vae, images: np.ndarray, kl_images: int = 512, seed: int = 0) -> dict:
    """One model's part of the explorer: each start image's mean code, and its latents ordered by KL.

    The KL of each latent to the prior is averaged over ``kl_images`` random dSprites images (rendered by the
    replica, seeded), as in :func:`fvae_lib.plots.encode_stats`; the explorer lists sliders by it, largest first.
    """
    from .data.replica import render_dsprites
    from .data.spec import FULL_SIZES
    from .plots import encode_stats

    rng = np.random.default_rng(seed)
    random = render_dsprites(np.stack([rng.integers(0, n, kl_images) for n in FULL_SIZES], 1), threads=1)
    vae = vae.eval()
    _, kl = encode_stats(vae, torch.from_numpy(random[:, None]).float())
    mu, _ = encode_stats(vae, torch.from_numpy(images[:, None]).float())
    order = [int(j) for j in torch.argsort(kl, descending=True)]
    return dict(z_dim=len(kl), kl=[round(float(v), 4) for v in kl], order=order,
                codes=[[round(float(v), 5) for v in code] for code in mu])


def latent_effects(vae, codes, latents, span: float = 1.5, steps: int = 7) -> dict[int, dict[str, float]]:
    """What moving each latent does to the decoded picture, averaged over start ``codes`` (n, d).

    For each latent in ``latents``: sweep it over [-span, span] from every start code and measure, on the decoder's
    Bernoulli means, how far the picture's centre moves across (``x``, pixels) and down (``y``), and how much its
    area (the sum of the means) changes relative to its average (``size``). A latent that is one factor moves one of
    these; an entangled one moves several. The explorer's page quotes these numbers for the shipped decoders.
    """
    from .plots import decode_codes

    rows, cols = np.mgrid[0:64, 0:64]
    effects = {}
    for j in latents:
        found = []
        for code in np.asarray(codes, dtype=np.float32):
            sweep = np.tile(code, (steps, 1))
            sweep[:, j] = np.linspace(-span, span, steps)
            p = decode_codes(vae, sweep)
            area = p.sum((1, 2))
            x, y = (p * cols).sum((1, 2)) / area, (p * rows).sum((1, 2)) / area
            found.append((np.ptp(x), np.ptp(y), np.ptp(area) / area.mean()))
        x, y, size = np.mean(found, 0)
        effects[int(j)] = dict(x=float(x), y=float(y), size=float(size))
    return effects


def write_explorer(folder: str | os.PathLike, names=EXPLORER_MODELS, labels: dict | None = None,
                   reference: str | os.PathLike | None = None) -> Path:
    """Export the reference models ``names`` (their decoders, ``<name>.onnx``) and ``explorer.json`` into ``folder``.

    ``explorer.json``: the start images (64 rows of 64 characters, "0"/"1"), and per model its file, label,
    latents' KL, their order and each start image's code; the slider range. Returns the JSON's path.
    """
    from .reference import load_reference_model

    folder = Path(folder)
    images = start_images()
    models = []
    for name in names:
        vae, config = load_reference_model(name, folder=reference)
        export_decoder(vae, folder / f"{name}.onnx")
        label = (labels or {}).get(name) or _label(config)
        models.append(dict(name=name, file=f"{name}.onnx", label=label, iterations=config.iterations,
                           **explorer_model(vae, images)))
    bundle = dict(limit=SLIDER_LIMIT, step=0.05,
                  images=[dict(label=label, pixels=["".join(map(str, row)) for row in image])
                          for (label, _), image in zip(START_IMAGES, images)],
                  models=models)
    path = folder / "explorer.json"
    atomic_write_bytes(path, json.dumps(bundle, indent=1).encode())
    return path


def _label(config) -> str:
    if config.model == "factorvae":
        return f"FactorVAE, γ = {config.gamma:g}"
    return f"β-VAE, β = {config.beta:g}"
