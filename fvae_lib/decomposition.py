"""Total correlation and the KL decomposition: analytic values and estimators.

    E_x[KL(q(z|x) ‖ p(z))] = I(x; z) + KL(q(z) ‖ p(z)),      KL(q(z) ‖ p(z)) = TC + Σ_j KL(q(z_j) ‖ p(z_j))

with TC = KL(q(z) ‖ q̄(z)), q̄(z) = Π_j q(z_j).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .models import Discriminator
from .objectives import discriminator_loss, permute_dims, total_correlation_estimate


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
