"""Total correlation and the KL decomposition: analytic values and estimators.

    E_x[KL(q(z|x) ‖ p(z))] = I(x; z) + KL(q(z) ‖ p(z)),      KL(q(z) ‖ p(z)) = TC + Σ_j KL(q(z_j) ‖ p(z_j))

with TC = KL(q(z) ‖ q̄(z)), q̄(z) = Π_j q(z_j).
"""
from __future__ import annotations

import numpy as np
import torch

from .device import default_device
from .encoding import EncodedGrid, encoder_representation
from .gaussians import LOG_2PI, log_normal, log_normal_per_dim, mixture_log_density, reparameterise
from .objectives import kl_per_dimension


# --------------------------------------------------------------------------------------------------
# The KL decomposition of a trained encoder over a dataset (ELBO surgery, β-TCVAE)
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def kl_decomposition_from_posteriors(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int = 2000,
                                     generator: torch.Generator | None = None,
                                     device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> dict:
    """Monte-Carlo estimate of every term of the KL decomposition for N posteriors q(z|x_n) = N(mu_n, σ_n²).

    q(z) is the mixture (1/N) Σ_n q(z|x_n) over **all** N posteriors given, and q(z_j) its marginals:
    the aggregate posterior of a dataset of N images. Draw n uniformly and z ~ q(z|x_n) ``num_samples``
    times; then, in nats,
        avg_kl            E_n KL(q(z|x_n) ‖ p(z))                  closed form (per latent: avg_kl_per_dim)
        mutual_info       I(x; z) = E[log q(z|x_n) − log q(z)]       (at most log N)
        marginal_kl       KL(q(z) ‖ p(z)) = E[log q(z) − log p(z)]
        total_correlation TC = E[log q(z) − Σ_j log q(z_j)]
        dimwise_kl        Σ_j KL(q(z_j) ‖ p(z_j)) = E[Σ_j log q(z_j) − log p(z_j)]
        dimwise_kl_per_dim  the same, one value per dimension
    mutual_info + marginal_kl estimates avg_kl (its Monte-Carlo standard error is ``mc_error``),
    total_correlation + dimwise_kl = marginal_kl exactly on the same samples, and ``tc_error`` is the
    standard error of total_correlation. Give every image of the dataset: a subsample of N points makes
    q(z) a spiky mixture of N bumps that does not factorise even when the code does, which caps I(x; z) at
    log N and pushes the rest into TC (several nats for sharp posteriors; ``tests/test_decomposition.py``).
    The cost is num_samples · N · d log-densities, streamed (:func:`fvae_lib.gaussians.mixture_log_density`)
    on ``device`` (default: where ``mu`` is), in ``dtype`` (default: float64 on a CPU up to 50,000 points, else
    float32). ``generator`` is a CPU generator: the draws are the same on every device and in either dtype.
    """
    n, d = mu.shape
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 2:
        raise ValueError(f"num_samples must be a whole number >= 2 (the standard errors need at least two samples of q(z)), "
                         f"got {num_samples!r}")
    device = torch.device(device) if device is not None else mu.device
    # the arithmetic: float64 where it is cheap, on a CPU; float32 for large N and on GPUs (slow at float64); sums in
    # float64. The draws do not depend on it: indices and ε always come from the CPU generator in float32, then move
    dtype = dtype or (torch.float64 if n <= 50_000 and device.type == "cpu" else torch.float32)
    mu, logvar = mu.to(device, dtype), logvar.to(device, dtype)
    idx = torch.randint(n, (num_samples,), generator=generator)
    eps = torch.randn(num_samples, d, generator=generator, dtype=torch.float32).to(device, dtype)
    idx = idx.to(device)
    z = reparameterise(mu[idx], logvar[idx], eps=eps)
    log_qz, log_qzj = mixture_log_density(z, mu, logvar)
    log_qzx = log_normal(z, mu[idx], logvar[idx]).sum(1)  # log q(z|x_n) of each sample's own image
    log_qz, log_qzj, log_qzx, z = log_qz.double(), log_qzj.double(), log_qzx.double(), z.double()
    log_pzj = -0.5 * (LOG_2PI + z.pow(2))  # (S, d)
    avg_kl_per_dim = kl_per_dimension(mu.double(), logvar.double()).mean(0)  # (d,) closed form
    mc_terms = log_qzx - log_pzj.sum(1)  # per-sample estimate of avg_kl
    tc_terms = log_qz - log_qzj.sum(1)
    dimwise = (log_qzj - log_pzj).mean(0)
    root = np.sqrt(num_samples)
    return {
        "avg_kl": float(avg_kl_per_dim.sum()),
        "avg_kl_per_dim": avg_kl_per_dim.tolist(),
        "mutual_info": float((log_qzx - log_qz).mean()),
        "marginal_kl": float((log_qz - log_pzj.sum(1)).mean()),
        "total_correlation": float(tc_terms.mean()),
        "dimwise_kl": float(dimwise.sum()),
        "dimwise_kl_per_dim": dimwise.tolist(),
        "mc_error": float(mc_terms.std() / root),
        "tc_error": float(tc_terms.std() / root),
        "log_n": float(np.log(n)),
        "num_points": n,
    }


@torch.no_grad()
def kl_decomposition(vae, data, rng: np.random.Generator, num_samples: int = 2000, num_points: int | None = None,
                     posteriors: EncodedGrid | None = None, device: str | torch.device | None = None) -> dict:
    """The decomposition for a trained VAE over the dataset ``data`` (the terms: :func:`kl_decomposition_from_posteriors`).

    q(z) is the aggregate posterior of **every** image of ``data`` (737,280 for dSprites; a reduced grid,
    ``DSprites(steps=...)``, is a smaller dataset with the same structure). ``posteriors``: an
    :class:`~fvae_lib.encoding.EncodedGrid` of ``encoder_representation(vae, output="posterior")`` codes,
    to reuse an encoding already made. ``num_points``: use that many images drawn at random instead,
    faster but biased (TC high by several nats for sharp posteriors; I(x; z) capped at log num_points).
    ``device``: where the mixture densities are computed (default: the GPU when there is one).
    """
    if num_points is not None:
        x = data.sample_observations(data.sample_factors(num_points, rng), rng)
        params = encoder_representation(vae, output="posterior")(x)
    else:
        if posteriors is None:
            posteriors = EncodedGrid.encode(data, encoder_representation(vae, output="posterior"))
        params = posteriors.codes
    params = torch.as_tensor(np.asarray(params, dtype=np.float32))
    d = params.shape[1] // 2
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    device = torch.device(device) if device is not None else default_device()
    return kl_decomposition_from_posteriors(params[:, :d], params[:, d:], num_samples, gen, device)


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

    Biased, and by a lot where posteriors overlap: each of the other M − 1 points stands for N / M images of
    weight 1/N, so should weigh about 1/M, and 1/(N M) is N times less; when q(z_i) comes mostly from other
    points every log-density is low by about log N and TC comes out high by about (d − 1) log N
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

    and the same weights for every marginal, so every row of weights sums to exactly 1: a stratified variant.
    β-TCVAE's own code (``vae_quant.py``) builds its weight matrix differently: it puts 1/N in column 0 rather
    than on each sample's own stratum, and one row of its weights sums to more than 1 (its pull request #1 raises
    this).
    """
    m = len(z)
    n = dataset_size
    if m < 2 or n < m:
        raise ValueError(f"minibatch_stratified_tc needs a batch of at least 2 samples from a dataset at least that large "
                         f"(its strata are the sample's own point and the M - 1 others), got M = {m}, N = {n}")
    w = torch.full((m, m), (n - 1) / (n * (m - 1)), dtype=z.dtype, device=z.device)
    w.fill_diagonal_(1.0 / n)
    return _minibatch_tc(log_normal_per_dim(z, mu, logvar), w.log())
