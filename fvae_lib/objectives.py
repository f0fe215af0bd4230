"""The loss terms of β-VAE and FactorVAE, each a function of tensors, with its equation.

    reconstruction_loss      −E_q(z|x) log p(x|z), Bernoulli
    kl_divergence            KL(q(z|x) ‖ N(0, I)) (per dimension: kl_per_dimension)
    beta_vae_loss            recon + β · KL                       the β-VAE baseline
    factor_vae_loss          recon + KL + γ · TC                  Eq. 2
    permute_dims             Algorithm 1: samples of q̄(z) from samples of q(z)
    total_correlation_estimate  TC ≈ mean(logit_0 − logit_1)      Eq. 3
    discriminator_loss       D's cross-entropy, q(z) against q̄(z)

One iteration of Algorithm 2, built from these, is :func:`fvae_lib.algorithm.factor_vae_step`.
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
    """The negative β-VAE objective (Higgins et al. 2017; the paper's baseline), to minimise:

        L_β = (1/B) Σ_i [ −E_q(z|x_i) log p(x_i|z) + β · KL(q(z|x_i) ‖ p(z)) ]  =  recon + β · KL

    β = 1 is the ordinary negative ELBO. β > 1 weighs the whole KL, and with it I(x; z) (notebook 02).
    """
    return recon + beta * kl


def factor_vae_loss(recon: torch.Tensor, kl: torch.Tensor, tc: torch.Tensor, gamma: float, beta: float = 1.0) -> torch.Tensor:
    """The negative FactorVAE objective (Kim & Mnih 2018, Eq. 2), to minimise:

        L_F = (1/B) Σ_i [ −E_q(z|x_i) log p(x_i|z) + KL(q(z|x_i) ‖ p(z)) ] + γ · KL(q(z) ‖ q̄(z))
            = recon + KL + γ · TC,        TC ≈ mean(logit_0 − logit_1) of the discriminator (Eq. 3)

    The ordinary VAE objective plus γ times the total correlation, estimated by the density-ratio trick
    (:func:`total_correlation_estimate`). Since the KL term already contains TC (notebook 02), TC's total
    weight is 1 + γ while I(x; z) keeps weight 1. ``beta`` scales the KL as in β-VAE; the paper keeps it at 1.
    """
    return recon + beta * kl + gamma * tc


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 1 (PERMUTE_DIMS): permute every latent dimension independently across the batch.

        z_perm[i, j] = z[π_j(i), j],  π_1 ... π_d independent uniform permutations of the batch

    Each column keeps its values (so the marginals q(z_j) are kept) while the rows are mixed (so the
    joint becomes a sample of q̄(z) = Π_j q(z_j)). Permuting *within* a sample (across dimensions)
    is the classic bug: each output row still holds one code's values, so the dependence stays, and the
    columns' values are mixed, so the marginals are lost.

    Finite batches: row i of the output takes dimensions j and k from the same input row whenever
    π_j(i) = π_k(i), which happens with probability 1/B. Those rows keep the pair's dependence, so a
    permuted row is drawn from q̄(z) mixed with a 1/B share of the pairwise joint: correlation ρ becomes
    ρ/B, not 0 (notebook 03 measures it). At B = 64 that is 1.6% of the dependence left.

    z: (B, d) -> (B, d), or (n, B, d) -> (n, B, d) for n batches permuted independently. One argsort of
    uniform noise gives all the permutations at once.
    """
    if z.dim() not in (2, 3):
        raise ValueError(f"permute_dims expects (batch, dims) or (batches, batch, dims), got shape {tuple(z.shape)}")
    noise = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(-2, noise.argsort(dim=-2))


def total_correlation_estimate(d_logits: torch.Tensor) -> torch.Tensor:
    """Density-ratio estimate of TC = KL(q(z) ‖ q̄(z)) from discriminator logits on z ~ q(z) (Eq. 3):

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
