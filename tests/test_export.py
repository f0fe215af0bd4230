"""Trained decoders for the web (fvae_lib.export): the ONNX graph computes what torch computes, and the explorer's
data are each model's codes of its start images, its latents ordered by KL. Needs the book extra (onnx, onnxscript,
onnxruntime); skipped, saying so, without it."""
import json

import numpy as np
import pytest
import torch

from fvae_lib.models import VAE
from fvae_lib.plots import decode_codes


def _missing():
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


needs_onnx = pytest.mark.skipif(_missing() is not None, reason=f"needs the book extra ({_missing()} is missing): pip install -e '.[book]'")

# --------------------------------------------------------------------------------------------------

@needs_onnx
def test_the_exported_decoder_computes_what_torch_computes(tmp_path):
    from fvae_lib.export import export_decoder, onnx_decode
    from fvae_lib.reference import load_reference_model

    rng = np.random.default_rng(1)
    codes = np.concatenate([rng.normal(0, 1.5, (30, 10)), np.full((1, 10), 3.0), np.full((1, 10), -3.0)]).astype(np.float32)
    vae, _ = load_reference_model("factorvae_g35")
    path = export_decoder(vae, tmp_path / "g35.onnx")
    ours = onnx_decode(path, codes)
    assert ours.shape == (32, 64, 64) and ours.dtype == np.float32
    assert np.abs(ours - decode_codes(vae, codes)).max() <= 1e-4
    assert np.abs(onnx_decode(path, codes[:1]) - decode_codes(vae, codes[:1])).max() <= 1e-4  # any batch size
    # the comparison can fail: another model's decoder is far from this one's
    other, _ = load_reference_model("betavae_b4")
    assert np.abs(ours - decode_codes(other, codes)).max() > 0.3


@needs_onnx
def test_a_decoder_on_any_device_or_layout_is_exported_as_a_float32_cpu_graph(tmp_path):
    from fvae_lib.export import export_decoder, onnx_decode

    torch.manual_seed(0)
    vae = VAE(6).to(memory_format=torch.channels_last)
    codes = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    path = export_decoder(vae, tmp_path / "sub" / "small.onnx")
    assert np.abs(onnx_decode(path, codes) - decode_codes(vae, codes)).max() <= 1e-4
    assert not list(path.parent.glob("*.tmp-*"))  # written to a temporary name and renamed


@needs_onnx
def test_the_explorer_data_are_each_models_codes_of_the_start_images_ordered_by_kl(tmp_path):
    from fvae_lib.export import START_IMAGES, start_images, write_explorer
    from fvae_lib.plots import encode_stats
    from fvae_lib.reference import load_reference_model

    bundle = json.loads(write_explorer(tmp_path, ["betavae_b4"]).read_text())
    images = start_images()
    assert [i["label"] for i in bundle["images"]] == [label for label, _ in START_IMAGES]
    assert np.array_equal(np.array([[list(map(int, row)) for row in i["pixels"]] for i in bundle["images"]]), images)
    assert len(set(map(bytes, images))) == len(images) and images.reshape(len(images), -1).sum(1).min() > 10
    (model,) = bundle["models"]
    vae, _ = load_reference_model("betavae_b4")
    mu, _ = encode_stats(vae, torch.from_numpy(images[:, None]).float())
    assert np.allclose(model["codes"], mu.numpy(), atol=1e-4)
    kl = np.array(model["kl"])
    assert sorted(model["order"]) == list(range(10)) and np.all(np.diff(kl[model["order"]]) <= 0)
    assert kl.max() > 1.0 and kl.min() < 0.1  # a trained beta-VAE: a few informative latents, others collapsed
    assert (tmp_path / model["file"]).is_file() and model["label"] == "β-VAE, β = 4" and model["iterations"] == 5000


def test_the_explorers_claims_about_the_shipped_decoders_hold():
    """The explorer's page says what the two shipped decoders' latents do; these are those measurements."""
    from fvae_lib.export import explorer_model, latent_effects, start_images
    from fvae_lib.reference import load_reference_model

    images = start_images()
    found = {}
    for name in ("betavae_b4", "factorvae_g35"):
        vae, _ = load_reference_model(name)
        model = explorer_model(vae, images)
        active = [j for j in model["order"] if model["kl"][j] >= 0.05]
        found[name] = latent_effects(vae, model["codes"], active[:5])
    fvae = found["factorvae_g35"]
    across = [e for e in fvae.values() if e["x"] > 12 and e["y"] < 3 and e["size"] < 0.3]
    down = [e for e in fvae.values() if e["y"] > 12 and e["x"] < 3 and e["size"] < 0.3]
    assert across and down  # FactorVAE: one latent is the horizontal position, another the vertical
    # beta-VAE: no informative latent is one position alone: each moves the picture both ways, or resizes it
    assert all(e["x"] > 2 and e["y"] > 2 for e in found["betavae_b4"].values())
    # the measurement can tell: a latent the decoder ignores moves nothing
    vae, _ = load_reference_model("betavae_b4")
    model = explorer_model(vae, images)
    dead = min(range(10), key=lambda j: model["kl"][j])
    assert max(latent_effects(vae, model["codes"], [dead])[dead].values()) < 0.5
