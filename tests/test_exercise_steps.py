"""The whole-step checkers pass right steps however they are written, and name each classic mistake of Algorithm 2."""
import pytest
import torch
import torch.nn.functional as F

from fvae_lib import objectives
from fvae_lib.algorithm import beta_vae_step, factor_vae_step
from fvae_lib.exercises import check_beta_vae_step, check_factor_vae_step
from fvae_lib.gaussians import reparameterise


def _terms(recon, kl, tc, loss, d_loss, d_acc, kl_dims):
    return dict(recon=recon.detach(), kl=kl.detach(), tc=tc.detach(), loss=loss.detach(), d_loss=d_loss.detach(),
                d_acc=d_acc, kl_per_dim=kl_dims.detach())


def algorithm_2(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta=1.0, noise=None, autocast=None, *, mistake=None):
    """Algorithm 2 written as a learner would, in one of several right forms or with one classic mistake."""
    if mistake == "d_first":
        return d_update_first(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise)
    logits, mu, logvar, z = vae(x1, noise)
    recon = F.binary_cross_entropy_with_logits(logits, x1, reduction="mean" if mistake == "recon_mean" else "sum")
    recon = recon if mistake == "recon_mean" else recon / len(x1)
    kl_dims = (0.5 * (mu ** 2 + logvar.exp() - logvar - 1)).mean(0)
    kl = kl_dims.sum()
    d_z = disc(z)
    tc = (d_z[:, 1] - d_z[:, 0]).mean() if mistake == "tc_sign" else (d_z[:, 0] - d_z[:, 1]).mean()
    loss = recon + beta * kl + gamma * tc
    if mistake == "leak":  # YannDubs/disentangling-vae#77: both backwards, then both steps; D's loss reaches the encoder
        opt_vae.zero_grad()
        loss.backward(retain_graph=True)
        with torch.no_grad():
            z2 = reparameterise(*vae.encoder(x2), noise)
        zp = objectives.permute_dims(z2, noise)
        ce = lambda lo, c: F.cross_entropy(lo, torch.full((len(lo),), c))  # noqa: E731
        d_loss = 0.5 * (ce(disc(z), 0) + ce(disc(zp), 1))
        opt_d.zero_grad()
        d_loss.backward()
        opt_vae.step()
        opt_d.step()
        return _terms(recon, kl, tc, loss, d_loss, torch.tensor(0.5), kl_dims)
    if mistake == "no_zero_vae":
        loss.backward()
    else:
        opt_vae.zero_grad()
        loss.backward()
    opt_vae.step()
    with torch.no_grad():
        mu2, logvar2 = vae.encoder(x2)
        z2 = reparameterise(mu2, logvar2, noise)
        if mistake == "within_sample":
            zp = torch.stack([row[torch.randperm(len(row))] for row in z2])
        elif mistake == "permute_b":
            zp = objectives.permute_dims(z.detach(), noise)
        elif mistake == "own_permutation":  # right: any permutation of each column, drawn from the global RNG
            zp = torch.stack([z2[torch.randperm(len(z2)), j] for j in range(z2.shape[1])], 1)
        else:
            zp = objectives.permute_dims(z2, noise)
    zd = z if mistake in ("reuse_graph", "no_detach") else z.detach()
    if mistake != "keep_d_grad":  # keep_d_grad: the VAE loss's gradient left in D's .grad
        opt_d.zero_grad()
    if mistake == "two_passes":  # right: one pass per class
        l0, l1 = disc(zd), disc(zp)
    else:
        both = disc(torch.cat([zd, zp]))
        l0, l1 = both[: len(zd)], both[len(zd):]
    ce = lambda lo, c: F.cross_entropy(lo, torch.full((len(lo),), c))  # noqa: E731
    d_loss = 0.5 * (ce(l0, 1) + ce(l1, 0)) if mistake == "swapped" else 0.5 * (ce(l0, 0) + ce(l1, 1))
    d_loss.backward(retain_graph=False)
    opt_d.step()
    acc = ((l0.argmax(1) == 0).float().sum() + (l1.argmax(1) == 1).float().sum()) / (len(l0) + len(l1))
    return _terms(recon, kl, tc, loss, d_loss, acc, kl_dims)


def d_update_first(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise):
    """D's update before the VAE's: the VAE then learns from a D that has already seen this batch."""
    logits, mu, logvar, z = vae(x1, noise)
    with torch.no_grad():
        zp = objectives.permute_dims(reparameterise(*vae.encoder(x2), noise), noise)
    l0, l1 = disc(z.detach()), disc(zp)
    d_loss = objectives.discriminator_loss(l0, l1)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    recon, kl_dims = objectives.reconstruction_loss(logits, x1), objectives.kl_per_dimension(mu, logvar).mean(0)
    tc = objectives.total_correlation_estimate(disc(z))
    loss = recon + beta * kl_dims.sum() + gamma * tc
    opt_vae.zero_grad()
    loss.backward()
    opt_vae.step()
    return _terms(recon, kl_dims.sum(), tc, loss, d_loss, objectives.discriminator_accuracy(l0, l1), kl_dims)


def with_mistake(mistake):
    def step(*args):
        return algorithm_2(*args, mistake=mistake)
    return step


RIGHT = [None, "two_passes", "own_permutation"]
MISTAKES = {
    "no_detach": "graph",  # D's loss through the VAE's freed graph
    "reuse_graph": "graph",
    "leak": "reached the encoder",
    "keep_d_grad": "γ·∂TC/∂D",
    "within_sample": "within each sample",
    "permute_b": "codes of batch B",
    "tc_sign": "wrong sign",
    "swapped": "classes are swapped",
    "no_zero_vae": "previous iteration",
    "recon_mean": "averaged over the pixels",
    "d_first": "one VAE update",
}


def test_the_library_step_passes(capsys):
    assert check_factor_vae_step(factor_vae_step)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("form", RIGHT)
def test_a_right_step_written_differently_passes(form, capsys):
    assert check_factor_vae_step(with_mistake(form)), capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", MISTAKES.items())
def test_each_classic_mistake_is_named(mistake, hint, capsys):
    assert not check_factor_vae_step(with_mistake(mistake))
    out = capsys.readouterr().out
    assert hint in out, out


def test_a_step_returning_too_few_terms_is_told_which(capsys):
    def partial(*args):
        terms = factor_vae_step(*args)
        return {"recon": terms.recon, "kl": terms.kl}

    assert not check_factor_vae_step(partial)
    assert "missing" in capsys.readouterr().out


# -- the β-VAE step ---------------------------------------------------------------------------------


def beta_step(vae, opt, x, beta, noise=None, autocast=None, *, mistake=None):
    mu, logvar = vae.encoder(x)
    z = mu if mistake == "decode_mu" else reparameterise(mu, logvar, noise)
    if mistake == "detached_z":
        z = z.detach()
    logits = vae.decoder(z)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())  # a right KL, written another way
    kl_dims = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(0)
    kl = kl_dims.sum() * (len(x) if mistake == "kl_batch_sum" else 1)
    loss = beta * recon + kl if mistake == "beta_on_recon" else recon + beta * kl
    if mistake != "no_zero":
        opt.zero_grad()
    loss.backward()
    opt.step()
    return dict(recon=recon.detach(), kl=kl.detach(), loss=loss.detach(), kl_per_dim=kl_dims.detach())


BETA_MISTAKES = {
    "decode_mu": "decoded means",
    "detached_z": "does not reach the encoder",
    "kl_batch_sum": "summed over the batch",
    "beta_on_recon": "β on the reconstruction",
    "no_zero": "zero_grad",
}


def test_the_beta_vae_checker_passes_right_steps(capsys):
    assert check_beta_vae_step(beta_vae_step)
    assert check_beta_vae_step(beta_step), capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", BETA_MISTAKES.items())
def test_the_beta_vae_checker_names_each_mistake(mistake, hint, capsys):
    assert not check_beta_vae_step(lambda *a: beta_step(*a, mistake=mistake))
    out = capsys.readouterr().out
    assert hint in out, out


def test_an_unfinished_step_is_reported_as_not_done(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not check_beta_vae_step(stub) and not check_factor_vae_step(stub)
    assert capsys.readouterr().out.count("not done yet") == 2
