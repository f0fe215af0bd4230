"""The density-ratio trick on its own: a discriminator trained by the permutation trick to estimate TC.

    disc, losses = fit_tc_discriminator(sample, dim=10)     # sample(n, generator) -> (n, 10) draws of q(z)
    estimate_tc(disc, sample(10_000, generator))             # TC ≈ mean(logit_0 − logit_1)

Kim & Mnih's Eq. 3 with Algorithm 1, apart from any VAE training: on Gaussians whose TC is known (notebook 04),
or on the posterior samples of a trained encoder (:func:`posterior_sampler`, notebook 05's fresh-discriminator
check of the TC that training logged).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .encoding import encoder_representation
from .gaussians import reparameterise
from .models import Discriminator
from .objectives import discriminator_loss, permute_dims, total_correlation_estimate


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
def posterior_sampler(vae, data, rng: np.random.Generator, num_points: int = 20000) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``sample(n, generator) -> (n, d)``: draws of z ~ q(z) for :func:`fit_tc_discriminator`, from a trained VAE.

    Encodes ``num_points`` random images of ``data`` once; each draw picks one of them and samples its
    posterior q(z|x). A discriminator trained on these, to convergence and apart from training, checks
    the TC estimate that the training log's discriminator reports (notebook 05).
    """
    x = data.sample_observations(data.sample_factors(num_points, rng), rng)
    params = torch.as_tensor(encoder_representation(vae, output="posterior")(x))
    d = params.shape[1] // 2
    mu, logvar = params[:, :d].contiguous(), params[:, d:].contiguous()

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(mu), (n,), generator=generator)
        return reparameterise(mu[idx], logvar[idx], generator)

    return sample


@torch.no_grad()
def estimate_tc(disc: Discriminator, z: torch.Tensor) -> float:
    """TC ≈ mean over z ~ q(z) of logit_0 − logit_1 (the density-ratio trick)."""
    return float(total_correlation_estimate(disc(z)))
