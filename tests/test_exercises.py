"""Every exercise checker passes the right answer and rejects each classic wrong one with the hint that names it."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fvae_lib import exercises, objectives
from fvae_lib.algorithm import beta_vae_step, factor_vae_step
from fvae_lib.exercises import check_beta_vae_step, check_factor_vae_step
from fvae_lib.gaussians import reparameterise

# -- the right answers ------------------------------------------------------------------------------


def index_of(factors, sizes):
    strides = [math.prod(sizes[k + 1:]) for k in range(len(sizes))]
    return (np.asarray(factors) * strides).sum(1)


def log_q(z, mu, logvar):
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar[None] + (z[:, None] - mu[None]) ** 2 / logvar.exp()[None])
    return torch.logsumexp(per_dim.sum(-1), dim=1) - math.log(len(mu))


def permute(z):
    return torch.stack([z[torch.randperm(len(z)), j] for j in range(z.shape[1])], 1)


def d_loss(disc, z, zp):
    z = z.detach()
    zeros, ones = torch.zeros(len(z), dtype=torch.long), torch.ones(len(zp), dtype=torch.long)
    return 0.5 * (F.cross_entropy(disc(z), zeros) + F.cross_entropy(disc(zp), ones))


def gaussian_tc(cov):
    return 0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1])


RIGHT = {
    "check_index_of": index_of,
    "check_reconstruction_loss": lambda lg, x: F.binary_cross_entropy_with_logits(lg, x, reduction="sum") / len(x),
    "check_kl_divergence": lambda mu, lv: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).sum(1).mean(),
    "check_reparameterise": lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps,
    "check_log_aggregate_posterior": log_q,
    "check_permute_dims": permute,
    "check_tc_from_logits": lambda logits: (logits[:, 0] - logits[:, 1]).mean(),
    "check_gaussian_tc": gaussian_tc,
    "check_discriminator_loss": d_loss,
    "check_majority_vote_accuracy": lambda v: v.max(0).sum() / v.sum(),
    # written another way than the library's: ddof 0, the collapsed latents masked with +inf
    "check_factor_vae_vote": lambda c, g, a: int(np.argmin(np.where(a, c.var(0) / np.where(a, g, 1.0), np.inf))),
    "check_dominates": lambda a, b: a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1]),
    "check_separated": lambda a, b: a.min() > b.max() or a.max() < b.min(),
    # the conceptual ones: a prediction, returned by a function
    "check_images_with_two_factors_fixed": lambda: 40 * 32 * 32,
    "check_beta_prediction": lambda: ("up", "down"),
    "check_information_cap": lambda: math.log(737_280),
    "check_collision_correlation": lambda: 0.6 / 16,
    "check_unequal_classes": lambda: 0.3 + math.log(2),
    "check_penalty_weights": lambda: (12, 2),
    "check_chance_score": lambda: 0.2,
}

# -- the classic wrong answers, each with the words its hint must contain ------------------------


def _shuffle_rows(z):
    return z[torch.randperm(len(z))]


def _with_replacement(z):
    return torch.stack([z[torch.randint(len(z), (len(z),)), j] for j in range(z.shape[1])], 1)


def _first_column_only(z):
    out = z.clone()
    out[:, 0] = z[torch.randperm(len(z)), 0]
    return out


def _log_q_factorised(z, mu, logvar):
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar[None] + (z[:, None] - mu[None]) ** 2 / logvar.exp()[None])
    return (torch.logsumexp(per_dim, dim=1) - math.log(len(mu))).sum(-1)


def _log_q_mean_of_logs(z, mu, logvar):
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar[None] + (z[:, None] - mu[None]) ** 2 / logvar.exp()[None])
    return per_dim.sum(-1).mean(1)


def _log_q_naive(z, mu, logvar):  # right on paper, −inf in float32 far from every component
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar[None] + (z[:, None] - mu[None]) ** 2 / logvar.exp()[None])
    return torch.log(per_dim.sum(-1).exp().mean(1))


def _recon_naive(logits, x):  # right on paper, inf in float32 for a confident decoder
    p = torch.sigmoid(logits)
    return -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum() / len(x)


def _d_loss_summed(disc, z, zp):
    z = z.detach()
    zeros, ones = torch.zeros(len(z), dtype=torch.long), torch.ones(len(zp), dtype=torch.long)
    return 0.5 * (F.cross_entropy(disc(z), zeros, reduction="sum") + F.cross_entropy(disc(zp), ones, reduction="sum"))


WRONG = [
    ("check_index_of", lambda f, s: np.ravel_multi_index(tuple(np.asarray(f).T), s, order="F"), "column-major"),
    ("check_index_of", lambda f, s: sum(np.asarray(f)[:, k] * math.prod(s[k:]) for k in range(len(s))), "j > k"),
    ("check_kl_divergence", lambda mu, lv: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).sum(), "summed over the batch"),
    ("check_kl_divergence", lambda mu, lv: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(), "averaged over the latent dimensions"),
    ("check_kl_divergence", lambda mu, lv: (0.5 * (mu ** 2 + lv.exp() - lv)).sum(1).mean(), "−1 is missing"),
    ("check_kl_divergence", lambda mu, lv: (0.5 * (mu ** 2 + (2 * lv).exp() - 2 * lv - 1)).sum(1).mean(), "log σ²"),
    ("check_reparameterise", lambda mu, lv, eps: mu + lv.exp() * eps, "by the variance"),
    ("check_reparameterise", lambda mu, lv, eps: mu + lv * eps, "logvar is a logarithm"),
    ("check_reparameterise", lambda mu, lv, eps: mu + eps, "eps is not scaled"),
    ("check_reparameterise", lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(), "no gradient reaches"),
    ("check_reparameterise", lambda mu, lv, eps: mu.detach() + torch.exp(0.5 * lv) * eps, "dz/dmu"),
    ("check_reparameterise", lambda mu, lv, eps: mu + torch.exp(0.5 * lv.detach()) * eps, "dz/dlogvar"),
    ("check_reconstruction_loss", lambda lg, x: F.binary_cross_entropy_with_logits(lg, x), "mean over the pixels"),
    ("check_reconstruction_loss", lambda lg, x: F.binary_cross_entropy_with_logits(lg, x, reduction="sum"), "summed over the batch"),
    ("check_reconstruction_loss", lambda lg, x: F.binary_cross_entropy_with_logits(torch.sigmoid(lg), x, reduction="sum") / len(x), "sigmoid is applied twice"),
    ("check_reconstruction_loss", lambda lg, x: ((torch.sigmoid(lg) - x) ** 2).sum() / len(x), "squared error"),
    ("check_reconstruction_loss", lambda lg, x: -F.binary_cross_entropy_with_logits(lg, x, reduction="sum") / len(x), "sign is flipped"),
    ("check_reconstruction_loss", _recon_naive, "logits of ±100"),
    ("check_log_aggregate_posterior", lambda z, mu, lv: log_q(z, mu, lv) + math.log(len(mu)), "off by log N"),
    ("check_log_aggregate_posterior", _log_q_factorised, "product of the marginals"),
    ("check_log_aggregate_posterior", _log_q_mean_of_logs, "averaged the log-densities"),
    ("check_log_aggregate_posterior", _log_q_naive, "logsumexp"),
    ("check_permute_dims", lambda z: torch.stack([row[torch.randperm(len(row))] for row in z]), "within each sample"),
    ("check_permute_dims", _shuffle_rows, "all columns moved together"),
    ("check_permute_dims", lambda z: z.sort(0).values, "sorted each column"),
    ("check_permute_dims", _first_column_only, "did not move"),
    ("check_permute_dims", _with_replacement, "with replacement"),
    ("check_permute_dims", lambda z: z, "nothing moved"),
    ("check_tc_from_logits", lambda lg: (lg[:, 1] - lg[:, 0]).mean(), "sign is flipped"),
    ("check_tc_from_logits", lambda lg: torch.log_softmax(lg, 1)[:, 0].mean(), "log D(z)"),
    ("check_tc_from_logits", lambda lg: lg[:, 0] - lg[:, 1], "one number"),
    ("check_tc_from_logits", lambda lg: (torch.softmax(lg, 1)[:, 0] - torch.softmax(lg, 1)[:, 1]).mean(), "difference of probabilities"),
    ("check_gaussian_tc", lambda c: 2 * gaussian_tc(c), "½ is missing"),
    ("check_gaussian_tc", lambda c: -gaussian_tc(c), "sign is flipped"),
    ("check_gaussian_tc", lambda c: -0.5 * np.linalg.slogdet(c)[1], "every variance is 1"),
    ("check_discriminator_loss", lambda d, z, zp: d_loss(d, zp, z), "classes are swapped"),
    ("check_discriminator_loss", lambda d, z, zp: 0.5 * (F.cross_entropy(d(z), torch.zeros(len(z), dtype=torch.long))
                                                         + F.cross_entropy(d(zp), torch.ones(len(zp), dtype=torch.long))), "z.detach()"),
    ("check_discriminator_loss", _d_loss_summed, "summed the cross-entropies"),
    ("check_discriminator_loss", lambda d, z, zp: 2 * d_loss(d, z, zp), "½ is missing"),
    ("check_factor_vae_vote", lambda c, g, a: int(np.flatnonzero(a)[np.argmax(c[:, a].var(0) / g[a])]), "argmin"),
    ("check_factor_vae_vote", lambda c, g, a: int(np.flatnonzero(a)[np.argmin(c[:, a].var(0))]), "raw variances"),
    ("check_factor_vae_vote", lambda c, g, a: int(np.flatnonzero(a)[np.argmin(c[:, a].var(0) / g[a] ** 0.5)]), "standard deviation"),
    ("check_factor_vae_vote", lambda c, g, a: int(np.nanargmin(c.var(0) / g)), "collapsed latent"),
    ("check_factor_vae_vote", lambda c, g, a: int(np.argmin(c[:, a].var(0) / g[a])), "whole code"),
    ("check_majority_vote_accuracy", lambda v: v.max(1).sum() / v.sum(), "best latent per factor"),
    ("check_majority_vote_accuracy", lambda v: np.trace(v) / v.sum(), "the diagonal"),
    ("check_majority_vote_accuracy", lambda v: v.max(0).sum(), "divide by the total"),
    ("check_dominates", lambda a, b: a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1]), "error backwards"),
    ("check_dominates", lambda a, b: a[0] <= b[0] and a[1] >= b[1], "does not dominate itself"),
    ("check_dominates", lambda a, b: a[0] < b[0] and a[1] > b[1], "a tie on one axis"),
    ("check_dominates", lambda a, b: a[0] < b[0] or a[1] > b[1], "a trade"),
    ("check_separated", lambda a, b: a.mean() != b.mean(), "not the means"),
    ("check_separated", lambda a, b: abs(a.mean() - b.mean()) > 0.05, "not the means"),
    ("check_separated", lambda a, b: a[0] != b[0], "first seeds only"),
    ("check_separated", lambda a, b: a[0] > b[-1] or a[-1] < b[0], "min() and max()"),
    ("check_separated", lambda a, b: a.min() >= b.max() or a.max() <= b.min(), "touch"),
    ("check_images_with_two_factors_fixed", lambda: 737_280 / 3, "fixes only the shape"),
    ("check_images_with_two_factors_fixed", lambda: 737_280 / 6, "fixes only the scale"),
    ("check_images_with_two_factors_fixed", lambda: 737_280 / 9, "not their sum"),
    ("check_images_with_two_factors_fixed", lambda: 104, "multiply"),
    ("check_beta_prediction", lambda: ("down", "down"), "worse reconstruction"),
    ("check_beta_prediction", lambda: ("up", "up"), "drives it down"),
    ("check_beta_prediction", lambda: ("down", "up"), "wrong way round"),
    ("check_beta_prediction", lambda: ("higher", "lower"), "'up' or 'down'"),
    ("check_information_cap", lambda: math.log2(737_280), "bits"),
    ("check_information_cap", lambda: math.log(11_520), "sub-grid"),
    ("check_information_cap", lambda: math.log(64), "batch of 64"),
    ("check_information_cap", lambda: 737_280, "not N"),
    ("check_collision_correlation", lambda: 0.0, "not 0"),
    ("check_collision_correlation", lambda: 0.6, "only the collisions"),
    ("check_collision_correlation", lambda: 0.6 / 256, "not 1/B²"),
    ("check_collision_correlation", lambda: 0.6 * 15 / 16, "do *not* collide"),
    ("check_unequal_classes", lambda: 0.3, "equal classes only"),
    ("check_unequal_classes", lambda: 0.3 - math.log(2), "pushes the gap up"),
    ("check_unequal_classes", lambda: 0.6, "added log"),
    ("check_penalty_weights", lambda: (10, 2), "β + γ"),
    ("check_penalty_weights", lambda: (11, 1), "not 1"),
    ("check_penalty_weights", lambda: (20, 2), "not multiplied"),
    ("check_penalty_weights", lambda: (12, 12), "whatever γ"),
    ("check_chance_score", lambda: 0.0, "not 0"),
    ("check_chance_score", lambda: 0.5, "yes/no"),
    ("check_chance_score", lambda: 0.1, "number of factors"),
]


WHOLE_STEP = {"check_beta_vae_step", "check_factor_vae_step"}  # right and wrong steps: tests/test_exercise_steps.py


def test_every_checker_has_a_right_answer_and_wrong_ones():
    checkers = {name for name in dir(exercises) if name.startswith("check_")} - WHOLE_STEP
    assert checkers == set(RIGHT), checkers ^ set(RIGHT)
    assert checkers == {name for name, _, _ in WRONG}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_right_answer_passes(name, capsys):
    torch.manual_seed(0)
    assert getattr(exercises, name)(RIGHT[name]) is True, capsys.readouterr().out


@pytest.mark.parametrize("name,wrong,hint", WRONG, ids=[f"{n}-{h}" for n, _, h in WRONG])
def test_a_classic_wrong_answer_is_rejected_and_named(name, wrong, hint, capsys):
    torch.manual_seed(0)
    assert getattr(exercises, name)(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


@pytest.mark.parametrize("name", sorted(n for n in dir(exercises) if n.startswith("check_")))
def test_an_unfinished_exercise_is_reported_as_not_done(name, capsys):
    """Every checker, given the release's stub, fails and says so: an unchanged release scores zero (nbgrader's
    autograded test is ``assert check_<name>(<function>)``)."""
    def stub(*args, **kwargs):
        raise NotImplementedError

    assert getattr(exercises, name)(stub) is False
    assert "not done yet" in capsys.readouterr().out


def test_the_library_solutions_agree_with_the_right_answers():
    mu, lv = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(RIGHT["check_kl_divergence"](mu, lv), objectives.kl_divergence(mu, lv))


# -- the whole-step checkers: right steps however written, and each classic mistake of Algorithm 2 named ----------


def _step_terms(recon, kl, tc, loss, d_loss, d_acc, kl_dims):
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
    if mistake == "hard_gamma":
        gamma = 35.0
    if mistake == "no_beta":
        beta = 1.0
    loss = recon + beta * kl + gamma * tc
    early = disc(z.detach()) if mistake == "class0_first" else None  # right: D is not changed by the VAE update
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
        return _step_terms(recon, kl, tc, loss, d_loss, torch.tensor(0.5), kl_dims)
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
    elif mistake == "class0_first":
        l0, l1 = early, disc(zp)
    elif mistake == "net_call":  # right: D's layers called directly
        l0, l1 = disc.net(zd), disc.net(zp)
    else:
        both = disc(torch.cat([zd, zp]))
        l0, l1 = both[: len(zd)], both[len(zd):]
    ce = lambda lo, c: F.cross_entropy(lo, torch.full((len(lo),), c))  # noqa: E731
    d_loss = 0.5 * (ce(l0, 1) + ce(l1, 0)) if mistake == "swapped" else 0.5 * (ce(l0, 0) + ce(l1, 1))
    d_loss.backward(retain_graph=False)
    opt_d.step()
    if mistake == "acc_after":  # right: the accuracy of the updated D
        with torch.no_grad():
            l0, l1 = disc(z.detach()), disc(zp)
    acc = ((l0.argmax(1) == 0).float().sum() + (l1.argmax(1) == 1).float().sum()) / (len(l0) + len(l1))
    return _step_terms(recon, kl, tc, loss, d_loss, acc, kl_dims)


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
    return _step_terms(recon, kl_dims.sum(), tc, loss, d_loss, objectives.discriminator_accuracy(l0, l1), kl_dims)


def with_mistake(mistake):
    def step(*args):
        return algorithm_2(*args, mistake=mistake)
    return step


RIGHT_STEPS = [None, "two_passes", "own_permutation", "class0_first", "net_call", "acc_after"]
STEP_MISTAKES = {
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
    "hard_gamma": "loss is",
    "no_beta": "weighs",
}


def test_the_library_step_passes(capsys):
    assert check_factor_vae_step(factor_vae_step)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("form", RIGHT_STEPS)
def test_a_right_step_written_differently_passes(form, capsys):
    assert check_factor_vae_step(with_mistake(form)), capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", STEP_MISTAKES.items())
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
    z = mu if mistake == "decode_mu" else reparameterise(mu, logvar, None if mistake == "global_rng" else noise)
    if mistake == "hard_beta":  # the notebook loop's config.beta, copied
        beta = 4.0
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
    "decode_mu": "given the means",
    "global_rng": "noise generator",
    "hard_beta": "weighs",
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


def test_the_information_cap_takes_the_entropy_of_the_images_with_repeats_too():
    """Orientations 0 and 2π draw the same picture: 18,432 images appear twice, so H(x) is 0.035 nats under log N."""
    entropy = math.log(737_280) - 2 * 18_432 / 737_280 * math.log(2)
    assert exercises.check_information_cap(lambda: entropy) and exercises.check_information_cap(lambda: math.log(737_280))
