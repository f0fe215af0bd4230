"""The step functions of fvae_lib.algorithm, called directly, and the trainer's contract with them (METHODS)."""
import pytest
import torch

from fvae_lib.algorithm import METHODS, BetaVAETerms, FactorVAETerms, beta_vae_step, factor_vae_step
from fvae_lib.config import TrainConfig
from fvae_lib.models import VAE, Discriminator
from fvae_lib.train import Trainer


def networks(seed=0):
    torch.manual_seed(seed)
    vae, disc = VAE(10), Discriminator(10)
    opt_vae = torch.optim.Adam(vae.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.9))
    return vae, disc, opt_vae, opt_d


def batches(n=2, b=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(b, 1, 64, 64, generator=g) < 0.1).float() for _ in range(n)]


def test_factor_vae_step_called_directly_updates_both_networks_and_returns_its_terms():
    vae, disc, opt_vae, opt_d = networks()
    before_vae = [p.detach().clone() for p in vae.parameters()]
    before_d = [p.detach().clone() for p in disc.parameters()]
    x1, x2 = batches()
    terms = factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma=35.0, noise=torch.Generator().manual_seed(2))
    assert isinstance(terms, FactorVAETerms) and terms.kl_per_dim.shape == (10,)
    assert torch.isclose(terms.loss, terms.recon + terms.kl + 35.0 * terms.tc, rtol=1e-5)
    assert 0.0 <= float(terms.d_acc) <= 1.0 and float(terms.d_loss) > 0
    assert all(not torch.equal(a, b) for a, b in zip(before_vae, vae.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, disc.parameters()))
    assert all(p.requires_grad for p in disc.parameters())  # D is not left frozen
    assert not any(t.requires_grad for t in (terms.recon, terms.kl, terms.tc, terms.loss, terms.d_loss))


# the step's three ways to D's update: D(z) reused with D's backward by hand (the default), the same left to
# autograd, and one pass of D over cat(z.detach(), permute_dims(z′)) (Algorithm 2 as usually written)
D_UPDATES = {"by hand": {}, "autograd": dict(d_backward_by_hand=False), "one pass": dict(reuse_d_of_z=False)}


def sgd_step_grads(options: dict, seed: int = 0, disc_class=Discriminator, prepare=lambda disc: None):
    """One library step from a fixed start with plain SGD: the gradients each update applied, per network (None
    for a parameter that took none). ``prepare`` sees D before the step (to hook or freeze it)."""
    torch.manual_seed(seed)
    vae, disc = VAE(10), disc_class(10)
    prepare(disc)
    opt_vae, opt_d = torch.optim.SGD(vae.parameters(), lr=1e-3), torch.optim.SGD(disc.parameters(), lr=1e-3)
    x1, x2 = batches(b=16)
    terms = factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma=35.0, noise=torch.Generator().manual_seed(5),
                            **options)
    grads = lambda net: [None if p.grad is None else p.grad.clone() for p in net.parameters()]  # noqa: E731
    return terms, grads(vae), grads(disc)


def relative_gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-12)) for x, y in zip(a, b))


def test_reusing_d_of_z_for_class_0_computes_the_one_pass_step_to_float_rounding():
    """The default reuses D(z) of the VAE step as D's class-0 logits; D is unchanged in between, so the terms and
    both updates' gradients are those of running D once on cat(z.detach(), permute_dims(z′)), up to float
    rounding (about 1e-6 here; the classic mistakes move a gradient by 1e-3 or more, fvae_lib.exercises.steps),
    whether D's backward is written out or left to autograd."""
    t_one, vae_one, d_one = sgd_step_grads(D_UPDATES["one pass"])
    for mode in ("by hand", "autograd"):
        t_reuse, vae_reuse, d_reuse = sgd_step_grads(D_UPDATES[mode])
        for name in FactorVAETerms.names():
            assert torch.allclose(getattr(t_reuse, name), getattr(t_one, name), rtol=1e-5, atol=1e-6), (mode, name)
        assert relative_gap(vae_reuse, vae_one) < 1e-4 and relative_gap(d_reuse, d_one) < 1e-4, mode


def test_the_library_discriminator_takes_the_backward_by_hand(monkeypatch):
    calls = []
    by_hand = Discriminator.backward_by_hand
    monkeypatch.setattr(Discriminator, "backward_by_hand", lambda self, *a: calls.append(len(a[0])) or by_hand(self, *a))
    sgd_step_grads(D_UPDATES["by hand"])
    assert calls == [32]  # one pass over both batches' rows
    for mode in ("autograd", "one pass"):
        sgd_step_grads(D_UPDATES[mode])
    assert calls == [32]


class DoubledDiscriminator(Discriminator):
    def forward(self, z):
        return 2 * super().forward(z)


def test_a_discriminator_that_is_not_the_library_one_as_written_is_left_to_autograd(monkeypatch):
    """D's backward by hand needs D's own forward and plain trained parameters: a hook (or torch.compile's
    forward), a subclass's forward or a parameter hook makes the step call D itself, twice (z and
    permute_dims(z′)), with autograd's gradients; a frozen layer keeps its weights."""
    monkeypatch.setattr(Discriminator, "backward_by_hand", lambda *a: pytest.fail("D's backward by hand was taken"))
    _, vae_auto, d_auto = sgd_step_grads(D_UPDATES["autograd"])
    kept, calls, seen = [], [], []

    def hook(disc):
        kept.append(disc)
        disc.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))

    _, vae_grads, d_grads = sgd_step_grads({}, prepare=hook)
    assert calls == [16, 16] and not kept[-1].runs_as_written()
    assert relative_gap(vae_grads, vae_auto) < 1e-6 and relative_gap(d_grads, d_auto) < 1e-6
    _, _, d_grads = sgd_step_grads({}, prepare=lambda disc: disc.net[0].weight.register_hook(lambda g: seen.append(g.shape)))
    assert relative_gap(d_grads, d_auto) < 1e-6 and seen == [(1000, 10)]
    sgd_step_grads({}, disc_class=DoubledDiscriminator, prepare=kept.append)  # its forward ran: by hand would fail
    assert not kept[-1].runs_as_written()

    def freeze(disc):
        disc.net[0].weight.requires_grad_(False)
        kept.append((disc, disc.net[0].weight.clone()))

    _, _, d_grads = sgd_step_grads({}, prepare=freeze)
    frozen, before = kept[-1]
    assert d_grads[0] is None and torch.equal(frozen.net[0].weight, before)


def test_the_vae_update_leaves_d_and_d_update_leaves_the_encoder_alone():
    """Both updates' gradients, recomputed from scratch by Algorithm 2: the VAE's is that of recon + β·KL + γ·TC alone
    (D's loss adds nothing to it: the classic leak), D's that of its cross-entropy on z.detach() and permute_dims(z′)
    alone (the VAE loss, γ-weighted, fills none of it)."""
    from fvae_lib.algorithm import vae_forward
    from fvae_lib.gaussians import reparameterise
    from fvae_lib.objectives import discriminator_loss, factor_vae_loss, permute_dims, total_correlation_estimate

    for options in D_UPDATES.values():
        _, vae_grads, d_grads = sgd_step_grads(options)
        torch.manual_seed(0)
        vae, disc = VAE(10), Discriminator(10)
        x1, x2 = batches(b=16)
        noise = torch.Generator().manual_seed(5)
        recon, kl_dims, z = vae_forward(vae, x1, noise)
        loss = factor_vae_loss(recon, kl_dims.sum(), total_correlation_estimate(disc(z)), 35.0, 1.0)
        want_vae = torch.autograd.grad(loss, list(vae.parameters()))
        assert relative_gap(vae_grads, list(want_vae)) < 1e-5
        with torch.no_grad():  # the SGD update, then z′ of B′ from the updated encoder, permuted
            for p, g in zip(vae.parameters(), want_vae):
                p -= 1e-3 * g
            mu2, logvar2 = vae.encoder(x2)
            z_perm = permute_dims(reparameterise(mu2, logvar2, noise), noise)
        want_d = torch.autograd.grad(discriminator_loss(disc(z.detach()), disc(z_perm)), list(disc.parameters()))
        assert relative_gap(d_grads, list(want_d)) < 1e-5


def test_beta_vae_step_called_directly_minimises_recon_plus_beta_kl():
    vae, _, opt_vae, _ = networks()
    [x] = batches(1)
    terms = beta_vae_step(vae, opt_vae, x, beta=4.0, noise=torch.Generator().manual_seed(2))
    assert isinstance(terms, BetaVAETerms)
    assert torch.isclose(terms.loss, terms.recon + 4.0 * terms.kl, rtol=1e-5)
    assert torch.isclose(terms.kl, terms.kl_per_dim.sum(), rtol=1e-5)


def test_the_trainer_calls_any_step_with_the_signature_methods_describes(tmp_path, small_replica):
    """A step of one's own (here the library's, wrapped, returning a dict) trains exactly as the library's."""
    seen = []

    def my_step(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast):
        seen.append((x1.shape, x2.shape, gamma, beta))
        terms = factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast)
        return {name: getattr(terms, name) for name in FactorVAETerms.names() + ["kl_per_dim"]}

    config = TrainConfig.from_preset("smoke", iterations=20, threads=1, gamma=10.0)
    mine = Trainer(config, tmp_path / "mine", data=small_replica, progress=False, step=my_step)
    mine.run()
    library = Trainer(config, tmp_path / "library", data=small_replica, progress=False)
    library.run()
    assert len(seen) == 20 and seen[0] == (torch.Size([32, 1, 64, 64]), torch.Size([32, 1, 64, 64]), 10.0, 1.0)
    for name in ("vae", "disc"):
        a, b = getattr(mine, name).state_dict(), getattr(library, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in mine.folder.read_history()] == [10, 20]
    assert METHODS["factorvae"].batches == 2 and METHODS["betavae"].hyperparameters == ("beta",)


def test_a_step_that_returns_the_wrong_terms_is_told_which(tmp_path, small_replica):
    import pytest

    def forgetful(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast):
        terms = factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast)
        return {"recon": terms.recon, "kl": terms.kl, "loss": terms.loss, "kl_per_dim": terms.kl_per_dim, "d_los": terms.d_loss}

    trainer = Trainer(TrainConfig.from_preset("smoke", threads=1), tmp_path / "r", data=small_replica, progress=False, step=forgetful)
    with pytest.raises(TypeError, match=r"missing: \['d_acc', 'd_loss', 'tc'\], unknown: \['d_los'\]"):
        trainer.train_step()
    trainer.close()
