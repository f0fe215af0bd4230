"""The step functions of fvae_lib.algorithm, called directly, and the trainer's contract with them (METHODS)."""
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
