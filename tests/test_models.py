"""The paper's networks: shapes, parameter counts, the 3-channel variant, the discriminator depth."""
import torch

from fvae_lib.models import VAE, Decoder, Discriminator, Encoder


def test_shapes_through_the_vae():
    vae = VAE(z_dim=10)
    x = torch.rand(4, 1, 64, 64)
    logits, mu, logvar, z = vae(x)
    assert logits.shape == (4, 1, 64, 64) and mu.shape == logvar.shape == z.shape == (4, 10)


def test_three_channel_variant_uses_fc_256():
    vae = VAE(z_dim=10, channels=3, hidden=256)
    logits, *_ = vae(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 3, 64, 64)
    assert vae.encoder.fc[1].out_features == 256 and vae.decoder.fc[0].out_features == 256


def test_discriminator_is_six_hidden_layers_of_1000():
    d = Discriminator(10)
    linears = [m for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [1000] * 6 + [2]
    assert all(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in d.net if not isinstance(m, torch.nn.Linear))
    assert d(torch.randn(3, 10)).shape == (3, 2)
    assert len([m for m in Discriminator(10, hidden_layers=5).modules() if isinstance(m, torch.nn.Linear)]) == 6


def test_reparameterisation_uses_the_generator_and_the_variance():
    mu, logvar = torch.zeros(20000, 2), torch.log(torch.tensor([[4.0, 0.25]])).expand(20000, 2)
    z = VAE.reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.std(0), torch.tensor([2.0, 0.5]), rtol=0.03, atol=0)
    z2 = VAE.reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)


def test_encoder_and_decoder_sizes_match_the_paper_table():
    enc, dec = Encoder(10), Decoder(10)
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (4, 4), (2, 2))] * 2 + [(64, (4, 4), (2, 2))] * 2
    deconvs = [m for m in dec.deconvs if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in deconvs] == [64, 32, 32, 1]


def test_the_fc_width_is_the_papers_for_the_channels():
    fc_width = lambda vae: vae.encoder.fc[1].out_features  # noqa: E731
    assert fc_width(VAE(10)) == 128 and fc_width(VAE(10, channels=3)) == 256  # dSprites; 64x64x3 data
    assert fc_width(VAE(10, channels=3, hidden=128)) == 128  # unless asked otherwise
