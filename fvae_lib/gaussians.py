"""Diagonal Gaussians and mixtures of them: the densities behind q(z|x), q(z) and q(z_j).

The aggregate posterior of a dataset of N images is the mixture q(z) = (1/N) Σ_n q(z|x_n), and its
marginals are q(z_j) = (1/N) Σ_n q(z_j|x_n). Its log-density at S points costs S · N · d Gaussian
log-densities, which for dSprites (N = 737,280) do not fit in memory at once: :func:`mixture_log_density`
streams the components in tiles and combines the tiles' log-sum-exps (the KL decomposition,
:mod:`fvae_lib.decomposition`, builds on it); :func:`mixture_entropies` does the same one dimension at a
time for Chen et al.'s MIG (:func:`fvae_lib.metrics.mig_sampled`).
"""
from __future__ import annotations

import numpy as np
import torch

LOG_2PI = float(np.log(2 * np.pi))


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """One sample z = mu + σ · ε of N(mu, diag(σ²)), σ = exp(½ logvar), ε ~ N(0, I) (Kingma & Welling's trick).

    ε is drawn from ``generator`` unless given (``eps``, the shape of ``mu``).
    """
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


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


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) elementwise (shapes broadcast): one value per dimension, not summed.

    The squared distance is taken in units of σ, ((z − μ) · exp(−½ logvar))², not (z − μ)² · exp(−logvar):
    exp(−logvar) overflows float32 below logvar ≈ −88.7 (a posterior collapsed to a point), and 0 · inf is
    NaN; exp(−½ logvar) holds to −177. Past that, z = μ is still at distance 0 (not 0 · inf) and any other z at
    density 0 (−inf): never NaN.
    """
    diff = z - mu
    scaled = diff * torch.exp(-0.5 * logvar)
    return -0.5 * (LOG_2PI + logvar + torch.where(diff == 0, torch.zeros_like(scaled), scaled).pow(2))


def log_normal_per_dim(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_d; mu_d, exp(logvar_d)) of every sample against every component, per dimension.

    z: (S, d); mu, logvar: (N, d) -> (S, N, d).
    """
    return log_normal(z[:, None, :], mu[None], logvar[None])


@torch.no_grad()
def mixture_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, tile: int = 4096,
                        rows: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """log q(z) and every log q(z_j) of the mixture q = (1/N) Σ_n N(mu_n, diag(exp(logvar_n))), at S points.

    z: (S, d); mu, logvar: (N, d) -> (log q(z) (S,), log q(z_j) (S, d)). Exact (no subsampling of the
    components): the points go ``rows`` at a time and the components ``tile`` at a time, so memory stays at
    rows · tile · d values whatever N is.
    """
    n = len(mu)
    joint, marginal = [], []
    for s in range(0, len(z), rows):
        zs = z[s : s + rows]
        parts_joint, parts_marginal = [], []
        for t in range(0, n, tile):
            lp = log_normal_per_dim(zs, mu[t : t + tile], logvar[t : t + tile])  # (rows, tile, d)
            parts_joint.append(torch.logsumexp(lp.sum(-1), dim=1))
            parts_marginal.append(torch.logsumexp(lp, dim=1))
        joint.append(torch.logsumexp(torch.stack(parts_joint, 1), dim=1))
        marginal.append(torch.logsumexp(torch.stack(parts_marginal, 1), dim=1))
    return torch.cat(joint) - np.log(n), torch.cat(marginal) - np.log(n)


@torch.no_grad()
def mixture_entropies(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, num_samples: int,
                      generator: torch.Generator | None = None, tile: int | None = None) -> torch.Tensor:
    """H(z_j) of every dimension j of the mixture q(z_j) = (1/N) Σ_n N(z_j; mu_nj, exp(logvar_nj)), in nats.

    z (N, d) holds one sample of each component; ``num_samples`` of them, drawn without replacement,
    give the Monte-Carlo estimate H(z_j) ≈ −mean_s log q(z_sj), with log q(z_j) a log-sum-exp over all N
    components. Cost: num_samples · N · d log-densities, one dimension at a time (no joint is needed, so
    this is lighter than :func:`mixture_log_density`). On a CPU the components go ``tile`` (4096) at a
    time, so each block stays in cache; on a GPU in blocks of about 2^27 log-densities
    (``benchmarks/README.md`` has the measured rates).
    """
    n, d = mu.shape
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 2:
        raise ValueError(f"num_samples must be a whole number >= 2 (the entropy's Monte Carlo needs samples), got {num_samples!r}")
    pick = torch.randperm(n, generator=generator)[: min(num_samples, n)].to(z.device)
    zs = z[pick]
    mu_t = mu.T.contiguous()  # (d, N): one dimension's components side by side
    inv_sd_t = torch.exp(-0.5 * logvar.T).contiguous()  # 1 / σ (as in log_normal: no overflow of 1 / σ²)
    norm_t = (-0.5 * (LOG_2PI + logvar.T)).contiguous()  # log of the Gaussian's normaliser
    on_cpu = z.device.type == "cpu"
    tile = tile or (4096 if on_cpu else n)
    rows = 256 if on_cpu else max(1, (1 << 27) // min(tile, n))
    total = torch.zeros(d, dtype=torch.float64, device=z.device)
    for j in range(d):
        for s in range(0, len(zs), rows):
            zj = zs[s : s + rows, j : j + 1]
            parts = []
            for t in range(0, n, tile):
                x = zj - mu_t[j, t : t + tile]  # (rows, tile)
                x.mul_(inv_sd_t[j, t : t + tile]).nan_to_num_(nan=0.0, posinf=float("inf"), neginf=-float("inf"))  # 0·inf: at μ
                x.square_().mul_(-0.5).add_(norm_t[j, t : t + tile])
                parts.append(torch.logsumexp(x, dim=1))
            log_q = torch.logsumexp(torch.stack(parts, 1), dim=1) - np.log(n)
            total[j] -= log_q.double().sum()
    return total / len(zs)


def pair_log_ratio(z: torch.Tensor, rho: float) -> torch.Tensor:
    """log q(z)/q̄(z) for q a pair of N(0, 1) latents with correlation ``rho`` (z: (n, 2)): the function an
    optimal discriminator's logit gap equals (notebook 04). Its mean over q is the TC, −½ log(1 − ρ²)."""
    a, b = z[:, 0], z[:, 1]
    return -0.5 * np.log(1 - rho**2) - (rho**2 * (a**2 + b**2) - 2 * rho * a * b) / (2 * (1 - rho**2))


def tc_seen_through_permutation(rho: float, batch_size: int, num_samples: int = 200_000, seed: int = 0) -> dict:
    """The TC that a discriminator fed permuted batches can at best report, for a pair of N(0, 1) latents with
    correlation ``rho``.

    A permuted row takes both coordinates from one input row with probability 1/B (notebook 03), so class 1
    is drawn from m = (1 − 1/B) q̄ + (1/B) q, not q̄, and the optimal discriminator's logit gap is log q/m.
    Returns ``tc`` (analytic, −½ log(1 − ρ²)), ``seen`` = KL(q ‖ m) (Monte Carlo over ``num_samples`` draws of
    q, with the difference tc − seen = E_q[log m/q̄] averaged on the same draws) and ``se``, its standard error.
    """
    if not -1 < rho < 1 or batch_size < 2:
        raise ValueError(f"need -1 < rho < 1 and batch_size >= 2, got rho={rho}, batch_size={batch_size}")
    g = torch.Generator().manual_seed(seed)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    z = torch.randn(num_samples, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    log_ratio = pair_log_ratio(z, rho)
    share = 1.0 / batch_size
    gap = torch.logaddexp(torch.full_like(log_ratio, np.log(1 - share)), np.log(share) + log_ratio)  # log m/q̄
    tc = float(-0.5 * np.log(1 - rho**2))
    return dict(tc=tc, seen=tc - gap.mean().item(), se=float(gap.std().item() / np.sqrt(num_samples)))
