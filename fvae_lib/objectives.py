"""The loss terms of β-VAE and FactorVAE, each a function of tensors.

Units: nats per image (summed over pixels and latent dimensions, averaged over the batch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood  -E_q(z|x) log p(x|z)  (one sample of z).

        recon = (1/B) Σ_i Σ_pixels BCE(sigmoid(logits_i), x_i)        [nats per image]
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) ‖ N(0, 1)) for every sample and dimension, (B, d):

        KL_j = ½ (mu_j² + exp(logvar_j) − logvar_j − 1)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)) summed over dimensions, averaged over the batch [nats per image]."""
    return kl_per_dimension(mu, logvar).sum(1).mean()


def beta_vae_loss(recon: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """Negative β-VAE objective:  recon + β · KL  (β = 1 is the ordinary negative ELBO)."""
    return recon + beta * kl


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 1 (PERMUTE_DIMS): permute every latent dimension independently across the batch.

        z_perm[i, j] = z[π_j(i), j],  π_1 ... π_d independent uniform permutations of the batch

    Each column keeps its values (so the marginals q(z_j) are kept) while the rows are mixed (so the
    joint becomes a sample of q̄(z) = Π_j q(z_j)). Permuting *within* a sample (across dimensions)
    is the classic bug: it mixes marginals and keeps nothing of q̄(z).

    z: (B, d) -> (B, d). One argsort of uniform noise gives all d permutations at once.
    """
    if z.dim() != 2:
        raise ValueError(f"permute_dims expects (batch, dims), got shape {tuple(z.shape)}")
    noise = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(0, noise.argsort(dim=0))


def total_correlation_estimate(d_logits: torch.Tensor) -> torch.Tensor:
    """Density-ratio estimate of TC = KL(q(z) ‖ q̄(z)) from discriminator logits on z ~ q(z):

        TC ≈ E_q(z)[ log D(z) / (1 − D(z)) ] = mean(logit_0 − logit_1)      (class 0 = "from q(z)")

    It can be negative on a batch: it is an estimate, and is near 0 when D sits at chance.
    """
    return (d_logits[:, 0] - d_logits[:, 1]).mean()


def discriminator_loss(logits_joint: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of D: ½ [ CE(D(z), class 0) + CE(D(permute_dims(z′)), class 1) ].

    Minimising it is gradient ascent on (1/2m)[Σ log D(z) + Σ log(1 − D(z′_perm))] (Algorithm 2).
    Feed it detached z: D's loss must never reach the encoder.
    """
    zeros = torch.zeros(len(logits_joint), dtype=torch.long, device=logits_joint.device)
    ones = torch.ones(len(logits_permuted), dtype=torch.long, device=logits_permuted.device)
    return 0.5 * (F.cross_entropy(logits_joint, zeros) + F.cross_entropy(logits_permuted, ones))


def discriminator_accuracy(logits_joint: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    """Share of both batches that D classifies correctly (0.5 = chance)."""
    right = (logits_joint.argmax(1) == 0).float().sum() + (logits_permuted.argmax(1) == 1).float().sum()
    return right / (len(logits_joint) + len(logits_permuted))
