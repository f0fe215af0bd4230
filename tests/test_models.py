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


# ----------------------------------------------------------------------------------------------------------
# The two pieces written for speed (#21): D's backward by hand, and the last deconvolution's forward
# ----------------------------------------------------------------------------------------------------------

def test_the_discriminators_backward_by_hand_is_autograds_over_several_passes():
    """Rows of two forward passes in one backward: the gradients autograd gives for the same loss, added to what
    .grad held; a LeakyReLU slope or a layer input gone wrong would move them by far more than rounding."""
    import pytest

    for hidden_layers in (0, 1, 6):
        torch.manual_seed(hidden_layers)
        disc = Discriminator(10, hidden=64, hidden_layers=hidden_layers)
        for k, act in enumerate(disc.net[1::2]):  # a slope of its own per layer: a misindexed one shows
            act.negative_slope = 0.1 + 0.15 * k
        assert disc.runs_as_written()
        za, zb = torch.randn(12, 10), torch.randn(7, 10)
        ga, gb = torch.randn(12, 2), torch.randn(7, 2)
        want = torch.autograd.grad((disc(za) * ga).sum() + (disc(zb) * gb).sum(), list(disc.parameters()))
        held = [torch.randn_like(p) for p in disc.parameters()]
        for p, h in zip(disc.parameters(), held):
            p.grad = h.clone()
        logits_a, inputs_a = disc.forward_keeping_inputs(za)
        logits_b, inputs_b = disc.forward_keeping_inputs(zb)
        assert torch.equal(logits_a, disc(za)) and len(inputs_a) == hidden_layers + 1
        disc.backward_by_hand(torch.cat([ga, gb]), [torch.cat(pair).detach() for pair in zip(inputs_a, inputs_b)])
        for p, h, w in zip(disc.parameters(), held, want):
            assert torch.allclose(p.grad, h + w, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="inputs of D's"):
            disc.backward_by_hand(ga, inputs_a[:-1])


def test_the_last_deconvolutions_training_forward_is_conv_transpose_to_rounding_and_its_backward_exactly():
    from fvae_lib.models import PhaseDeconv

    torch.manual_seed(0)
    decoder = Decoder(10).to(memory_format=torch.channels_last)
    last = decoder.deconvs[-1]
    h = torch.rand(8, 32, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
    upstream = torch.randn(8, 1, 64, 64)
    want = last(h)
    want_grads = torch.autograd.grad(want, [h, last.weight, last.bias], upstream)
    got = PhaseDeconv.apply(h, last.weight, last.bias)
    assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, want, rtol=0, atol=1e-5) and not torch.equal(got, torch.zeros_like(got))
    got_grads = torch.autograd.grad(got, [h, last.weight, last.bias], upstream)
    assert all(torch.equal(a, b) for a, b in zip(got_grads, want_grads))  # convolution_backward, the same call
    h64 = torch.randn(2, 3, 5, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
    w64 = torch.randn(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(PhaseDeconv.apply, (h64, w64, torch.randn(1, dtype=torch.float64, requires_grad=True)))


def test_in_the_bf16_fast_path_the_phase_forward_multiplies_in_fp32_and_its_backward_is_autocasts():
    """A bf16 input: fp32 logits equal to the fp32 layer's on the same input to rounding (autocast's bf16 layer
    is ~1e-2 off), and the gradients of autocast's bf16 ConvTranspose2d, bit for bit, for given logits."""
    from fvae_lib.models import PhaseDeconv

    torch.manual_seed(0)
    last = Decoder(10).to(memory_format=torch.channels_last).deconvs[-1]
    h = torch.rand(8, 32, 32, 32).contiguous(memory_format=torch.channels_last).bfloat16().requires_grad_()
    upstream = torch.randn(8, 1, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = last(h).float()
        got = PhaseDeconv.apply(h, last.weight, last.bias)
    exact = torch.nn.functional.conv_transpose2d(h.detach().float(), last.weight.detach(), last.bias.detach(), 2, 1)
    assert got.dtype == torch.float32 and torch.allclose(got, exact, rtol=0, atol=1e-5)
    assert torch.allclose(want, exact, atol=0.1)  # the layer it replaces, bf16-rounded
    want_grads = torch.autograd.grad(want, [h, last.weight, last.bias], upstream)
    got_grads = torch.autograd.grad(got, [h, last.weight, last.bias], upstream)
    assert [g.dtype for g in got_grads] == [torch.bfloat16, torch.float32, torch.float32]
    assert all(torch.equal(a, b) for a, b in zip(got_grads, want_grads))


def test_the_decoder_takes_the_phase_forward_only_to_train_in_fp32_channels_last(monkeypatch):
    """Training in fp32 channels_last (or in the bf16 fast path) goes through PhaseDeconv; evaluation, no_grad,
    NCHW, other autocasts, hooks and phase_last_layer = False keep nn.ConvTranspose2d, and its numbers exactly."""
    import fvae_lib.models as models

    calls = []
    apply = models.PhaseDeconv.apply
    monkeypatch.setattr(models.PhaseDeconv, "apply", lambda *a: calls.append(1) or apply(*a))
    torch.manual_seed(0)
    decoder = Decoder(10).to(memory_format=torch.channels_last)
    z = torch.randn(4, 10)
    h = decoder.fc(z)
    for layer in decoder.deconvs[:-1]:
        h = layer(h)
    assert h.is_contiguous(memory_format=torch.channels_last)
    reference = decoder.deconvs[-1](h)
    assert torch.allclose(decoder(z), reference, rtol=0, atol=1e-5) and calls == [1]
    decoder.phase_last_layer = False
    assert torch.equal(decoder(z), reference)
    decoder.phase_last_layer = True
    with torch.no_grad():
        assert torch.equal(decoder(z), reference)
    assert torch.equal(decoder.eval()(z), reference)
    nchw = Decoder(10)
    nchw.load_state_dict(decoder.state_dict())
    assert torch.equal(nchw(z), nchw.deconvs(nchw.fc(z)))
    assert calls == [1]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the fast path's training forward: fp32 logits
        assert decoder.train()(z).dtype == torch.float32 and calls == [1, 1]
        with torch.no_grad():
            assert decoder(z).dtype == torch.bfloat16  # not training: autocast's bf16 layer
    with torch.autocast("cpu", dtype=torch.float16):
        assert decoder(z).dtype == torch.float16 and calls == [1, 1]  # another autocast: the layer
    seen = []  # a hook on the layers (weight norm, pruning, a probe) keeps the layers' own forward, and fires
    decoder.deconvs[-1].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    assert torch.equal(decoder(z), reference) and seen == [(4, 1, 64, 64)] and calls == [1, 1]
