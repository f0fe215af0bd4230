"""Total correlation and the KL decomposition: analytic values and estimators.

    E_x[KL(q(z|x) ‖ p(z))] = I(x; z) + KL(q(z) ‖ p(z)),      KL(q(z) ‖ p(z)) = TC + Σ_j KL(q(z_j) ‖ p(z_j))

with TC = KL(q(z) ‖ q̄(z)), q̄(z) = Π_j q(z_j).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .models import Discriminator
from .objectives import discriminator_loss, kl_per_dimension, permute_dims, total_correlation_estimate


def gaussian_total_correlation(cov) -> float:
    """TC of a Gaussian N(m, Σ) in nats:  ½ (Σ_j log Σ_jj − log det Σ) = −½ log det R,

    with R the correlation matrix. 0 exactly when Σ is diagonal.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {cov.shape}")
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        raise ValueError("cov must be positive definite")
    return float(0.5 * (np.log(np.diag(cov)).sum() - logdet))


def fit_tc_discriminator(
    sample: Callable[[int, torch.Generator], torch.Tensor],
    dim: int,
    steps: int = 1500,
    batch_size: int = 256,
    lr: float = 1e-3,
    hidden: int = 256,
    hidden_layers: int = 3,
    seed: int = 0,
) -> tuple[Discriminator, list[float]]:
    """Train a discriminator by the permutation trick on samples of q(z) and return it with its loss curve.

    Each step draws two independent batches from ``sample(batch_size, generator) -> (B, dim)``: the
    first is class 0 ("from q(z)"), the second, passed through :func:`permute_dims`, is class 1 (a
    sample of q̄(z)). At the optimum logit_0 − logit_1 = log q(z) / q̄(z), so the mean logit gap on
    fresh samples estimates TC (:func:`estimate_tc`).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        disc = Discriminator(dim, hidden=hidden, hidden_layers=hidden_layers)
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.9))
    losses = []
    for _ in range(steps):
        z, z2 = sample(batch_size, gen), sample(batch_size, gen)
        logits = disc(torch.cat([z, permute_dims(z2, gen)]))
        loss = discriminator_loss(logits[:batch_size], logits[batch_size:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return disc, losses


@torch.no_grad()
def estimate_tc(disc: Discriminator, z: torch.Tensor) -> float:
    """TC ≈ mean over z ~ q(z) of logit_0 − logit_1 (the density-ratio trick)."""
    return float(total_correlation_estimate(disc(z)))


# --------------------------------------------------------------------------------------------------
# Gaussian log densities
# --------------------------------------------------------------------------------------------------

_LOG_2PI = float(np.log(2 * np.pi))


def log_normal_per_dim(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_d; mu_d, exp(logvar_d)) of every sample against every component, per dimension.

    z: (S, d); mu, logvar: (N, d) -> (S, N, d).
    """
    z, mu, logvar = z[:, None, :], mu[None], logvar[None]
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


# --------------------------------------------------------------------------------------------------
# The KL decomposition of a trained encoder over a dataset (ELBO surgery, β-TCVAE)
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def kl_decomposition_from_posteriors(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int = 2000,
                                     generator: torch.Generator | None = None, chunk: int = 256) -> dict:
    """Monte-Carlo estimate of every term of the KL decomposition for N posteriors q(z|x_n) = N(mu_n, σ_n²).

    q(z) is the mixture (1/N) Σ_n q(z|x_n) and q(z_j) its marginals. Draw n uniformly and z ~ q(z|x_n)
    ``num_samples`` times; then, in nats,
        avg_kl            E_n KL(q(z|x_n) ‖ p(z))                  closed form (per latent: avg_kl_per_dim)
        mutual_info       I(x; z) = E[log q(z|x_n) − log q(z)]       (at most log N)
        marginal_kl       KL(q(z) ‖ p(z)) = E[log q(z) − log p(z)]
        total_correlation TC = E[log q(z) − Σ_j log q(z_j)]
        dimwise_kl        Σ_j KL(q(z_j) ‖ p(z_j)) = E[Σ_j log q(z_j) − log p(z_j)]
        dimwise_kl_per_dim  the same, one value per dimension
    mutual_info + marginal_kl estimates avg_kl (its MC error is in ``mc_error``), and
    total_correlation + dimwise_kl = marginal_kl exactly on the same samples.
    """
    mu, logvar = mu.double(), logvar.double()
    n, d = mu.shape
    idx = torch.randint(n, (num_samples,), generator=generator)
    z = mu[idx] + torch.exp(0.5 * logvar[idx]) * torch.randn(num_samples, d, generator=generator, dtype=mu.dtype)
    log_qzx, log_qz, log_qzj = [], [], []
    for s in range(0, num_samples, chunk):
        lp = log_normal_per_dim(z[s : s + chunk], mu, logvar)  # (c, N, d)
        own = idx[s : s + chunk]
        log_qzx.append(lp[torch.arange(len(own)), own].sum(-1))  # log q(z|x_n) of the sample's own x_n
        log_qz.append(torch.logsumexp(lp.sum(-1), dim=1) - np.log(n))  # log q(z)
        log_qzj.append(torch.logsumexp(lp, dim=1) - np.log(n))  # (c, d): log q(z_j)
    log_qzx, log_qz, log_qzj = torch.cat(log_qzx), torch.cat(log_qz), torch.cat(log_qzj)
    log_pzj = -0.5 * (_LOG_2PI + z.pow(2))  # (S, d)
    avg_kl_per_dim = kl_per_dimension(mu, logvar).mean(0)  # (d,) closed form
    mc_terms = log_qzx - log_pzj.sum(1)  # per-sample estimate of avg_kl
    dimwise = (log_qzj - log_pzj).mean(0)
    return {
        "avg_kl": float(avg_kl_per_dim.sum()),
        "avg_kl_per_dim": avg_kl_per_dim.tolist(),
        "mutual_info": float((log_qzx - log_qz).mean()),
        "marginal_kl": float((log_qz - log_pzj.sum(1)).mean()),
        "total_correlation": float((log_qz - log_qzj.sum(1)).mean()),
        "dimwise_kl": float(dimwise.sum()),
        "dimwise_kl_per_dim": dimwise.tolist(),
        "mc_error": float(mc_terms.std() / np.sqrt(num_samples)),
        "log_n": float(np.log(n)),
    }


@torch.no_grad()
def kl_decomposition(vae, data, rng: np.random.Generator, num_points: int = 2000, num_samples: int = 2000) -> dict:
    """The decomposition for a trained VAE over ``num_points`` images drawn uniformly from ``data``.

    q(z) is the mixture of those points' posteriors (so I(x; z) ≤ log num_points); see
    :func:`kl_decomposition_from_posteriors` for the terms.
    """
    x = data.sample_observations(data.sample_factors(num_points, rng), rng)
    device = next(vae.parameters()).device
    was_training = vae.training
    vae.eval()
    mus, logvars = [], []
    for s in range(0, num_points, 1024):
        mu, logvar = vae.encoder(x[s : s + 1024].to(device))
        mus.append(mu.float().cpu()), logvars.append(logvar.float().cpu())
    vae.train(was_training)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return kl_decomposition_from_posteriors(torch.cat(mus), torch.cat(logvars), num_samples, gen)


# --------------------------------------------------------------------------------------------------
# β-TCVAE's minibatch estimators of TC
# --------------------------------------------------------------------------------------------------


def _minibatch_tc(log_qz_cond: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    # log_qz_cond: (M, M, d) = log q(z_i,d | x_j); log_w: (M, M) log weight of component j for sample i
    log_qz = torch.logsumexp(log_w + log_qz_cond.sum(-1), dim=1)
    log_prod_qzj = torch.logsumexp(log_w[..., None] + log_qz_cond, dim=1).sum(-1)
    return (log_qz - log_prod_qzj).mean()


def minibatch_weighted_tc(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int) -> torch.Tensor:
    """Minibatch-weighted sampling (MWS), with its normalisation (β-TCVAE's ``vae_quant.py``):

        log q(z_i)   ≈ logsumexp_j log q(z_i | x_j) − log(N M)
        log q(z_i,d) ≈ logsumexp_j log q(z_i,d | x_j) − log(N M)
        TC ≈ (1/M) Σ_i [log q(z_i) − Σ_d log q(z_i,d)]

    z, mu, logvar: (M, d) samples of the batch's own posteriors.

    Biased, and by a lot where posteriors overlap: the weight 1/(N M) counts the other M − 1 points
    as if each stood for one data point rather than N / M of them, so when q(z_i) comes mostly from
    other points every log-density is low by log N and TC comes out high by about (d − 1) log N
    (:func:`minibatch_stratified_tc` has no such offset). Where posteriors are sharp and apart, the
    offsets differ. disentanglement_lib drops the constant, shifting TC by −(d − 1) log(N M) instead.
    """
    m = len(z)
    log_w = torch.full((m, m), -float(np.log(dataset_size * m)), dtype=z.dtype, device=z.device)
    return _minibatch_tc(log_normal_per_dim(z, mu, logvar), log_w)


def minibatch_stratified_tc(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int) -> torch.Tensor:
    """Minibatch-stratified sampling (MSS): the sample's own posterior is one stratum of weight 1/N and
    the other M − 1 points share the rest, (N − 1) / (N (M − 1)) each:

        log q(z_i) ≈ logsumexp_j [ log w_ij + log q(z_i | x_j) ],   w_ii = 1/N,  w_ij = (N−1)/(N(M−1))

    and the same weights for every marginal. This is the plain form of the idea; β-TCVAE's code also
    moves one off-diagonal weight, a detail its PR #1 disputes.
    """
    m = len(z)
    n = dataset_size
    w = torch.full((m, m), (n - 1) / (n * (m - 1)), dtype=z.dtype, device=z.device)
    w.fill_diagonal_(1.0 / n)
    return _minibatch_tc(log_normal_per_dim(z, mu, logvar), w.log())
