"""Encoding a dataset: the encoder as a representation (means, posteriors, samples; frozen or eager) and the
encoded grid, which scores as encoding on the fly does."""
import numpy as np
import pytest
import torch

from fvae_lib.data import FactorObservations
from fvae_lib.encoding import EncodedGrid, encoder_representation
from fvae_lib.metrics import beta_vae_score, dci, factor_vae_score, mig

DATA = FactorObservations((3, 6, 10, 8, 8))


def rng(seed=0):
    return np.random.default_rng(seed)


def test_encoder_representation_is_the_batched_mean_and_keeps_train_mode():
    from fvae_lib.models import VAE

    vae = VAE(4).train()
    x = torch.rand(10, 1, 64, 64)
    rep = encoder_representation(vae, batch_size=3)(x)
    with torch.no_grad():
        mu, _ = vae.encoder(x)
    np.testing.assert_allclose(rep, mu.numpy(), rtol=1e-5, atol=1e-6)
    assert vae.training and rep.shape == (10, 4)

def test_sampled_representation_draws_from_the_posterior_with_its_own_seed():
    from fvae_lib.models import VAE

    torch.manual_seed(0)
    vae = VAE(4)
    x = torch.rand(1, 1, 64, 64).repeat(4000, 1, 1, 1)  # one image, many draws
    post = encoder_representation(vae, output="posterior")(x[:1])
    mu, sigma = post[0, :4], np.exp(0.5 * post[0, 4:])
    draws = encoder_representation(vae, output="sample", seed=1)(x)
    # z ~ N(mu, sigma^2) per latent: the sample mean within 5 standard errors, the std within 10%
    assert np.all(np.abs(draws.mean(0) - mu) < 5 * sigma / np.sqrt(len(x)))
    np.testing.assert_allclose(draws.std(0), sigma, rtol=0.1)
    again = encoder_representation(vae, output="sample", seed=1)(x)
    other = encoder_representation(vae, output="sample", seed=2)(x)
    np.testing.assert_array_equal(draws, again)  # the seed fixes the draws
    assert np.abs(draws - other).max() > 0.1
    with pytest.raises(ValueError, match="'mean', 'posterior' or 'sample'"):
        encoder_representation(vae, output="samples")

def _trained_a_little(vae):
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2, fused=True)
    mu, _ = vae.encoder(torch.rand(8, 1, 64, 64))
    mu.square().sum().backward()
    opt.step()

def test_frozen_encoder_gives_the_eager_codes_and_follows_weight_updates():
    from fvae_lib.models import VAE

    torch.manual_seed(0)
    vae = VAE(6).train()
    x = torch.rand(21, 1, 64, 64)
    frozen = encoder_representation(vae, batch_size=8, freeze=True)
    eager = encoder_representation(vae, batch_size=8, freeze=False)
    np.testing.assert_allclose(frozen(x), eager(x), rtol=1e-5, atol=1e-6)
    before = frozen(x)
    _trained_a_little(vae)  # an optimiser step changes the weights in place: the frozen copy must follow
    np.testing.assert_allclose(frozen(x), eager(x), rtol=1e-5, atol=1e-6)
    assert np.abs(frozen(x) - before).max() > 1e-3
    other = VAE(6)
    vae.load_state_dict(other.state_dict())  # so must it after load_state_dict
    with torch.no_grad():
        np.testing.assert_allclose(frozen(x), other.encoder(x)[0].numpy(), rtol=1e-5, atol=1e-6)
    assert vae.training

def test_frozen_encoder_falls_back_to_eager_with_a_warning(monkeypatch):
    from fvae_lib.models import VAE

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot trace this")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    vae = VAE(3)
    x = torch.rand(5, 1, 64, 64)
    with pytest.warns(RuntimeWarning, match="encoding eagerly.*cannot trace this"):
        codes = encoder_representation(vae, freeze=True)(x)
    with torch.no_grad():
        np.testing.assert_allclose(codes, vae.encoder(x)[0].numpy(), rtol=1e-5, atol=1e-6)

def _warped(x):
    # a deterministic, nonlinear, entangling code of the toy observations
    z = x.numpy().astype(np.float64)
    return np.tanh(np.stack([z[:, 0] + 0.3 * z[:, 1], z[:, 1], z[:, 2] ** 2, z[:, 3] - z[:, 4], z[:, 4], 0 * z[:, 0]], 1))

def test_encoded_grid_gives_the_same_scores_as_encoding_on_the_fly():
    calls = []

    def counted(x):
        calls.append(len(x))
        return _warped(x)

    grid = EncodedGrid.encode(DATA, counted, chunk=1000)
    assert sum(calls) == len(DATA) and grid.codes.shape == (len(DATA), 6)
    for metric, kw in [(factor_vae_score, dict(num_train=300, num_eval=200, num_variance_estimate=1000)),
                       (beta_vae_score, dict(num_train=200, num_eval=100)),
                       (mig, dict(num_train=2000)),
                       (dci, dict(num_train=300, num_test=200, n_jobs=1))]:
        assert metric(grid, grid.represent, rng(3), **kw) == metric(DATA, _warped, rng(3), **kw), metric.__name__

def test_encoded_grid_refuses_codes_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"codes must have shape \(len\(data\) = 11520, d\)"):
        EncodedGrid(DATA, np.zeros((10, 3)))

def test_encoder_posterior_output_is_mean_then_logvar():
    from fvae_lib.models import VAE

    vae = VAE(4)
    x = torch.rand(6, 1, 64, 64)
    both = encoder_representation(vae, output="posterior")(x)
    with torch.no_grad():
        mu, logvar = vae.encoder(x)
    assert both.shape == (6, 8)
    np.testing.assert_allclose(both, torch.cat([mu, logvar], 1).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="output must be"):
        encoder_representation(vae, output="logvar")  # "sample" is valid: see the sampled test
