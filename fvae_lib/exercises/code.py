"""Checkers for the exercises that ask for code: each names the classic wrong answers it recognises."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .. import objectives
from ..gaussians import gaussian_total_correlation, log_normal_per_dim
from .common import close, run_check

__all__ = ['check_index_of', 'check_reconstruction_loss', 'check_kl_divergence', 'check_reparameterise', 'check_log_aggregate_posterior', 'check_permute_dims', 'check_tc_from_logits', 'check_gaussian_tc', 'check_discriminator_loss']


# -- 00 The data -----------------------------------------------------------------------------------


def check_index_of(fn: Callable) -> bool:
    """fn(factors (n, K), factor_sizes) -> row-major indices (n,), the last factor fastest."""

    def check():
        sizes = (3, 6, 40, 32, 32)
        factors = np.array([[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31], [1, 2, 3, 4, 5]])
        got = np.asarray(fn(factors, sizes)).ravel()
        ref = np.ravel_multi_index(tuple(factors.T), sizes)
        if np.array_equal(got, np.ravel_multi_index(tuple(factors.T), sizes, order="F")):
            return "that is column-major (the first factor fastest); dSprites puts posY, the last factor, fastest"
        if np.array_equal(got, sum(factors[:, k] * math.prod(sizes[k:]) for k in range(len(sizes)))):
            return "each factor is multiplied by its own size too: the stride of factor k is Π over the factors after k (j > k), not j ≥ k"
        if not np.array_equal(got, ref):
            return f"expected {ref.tolist()}, got {got.tolist()}. Hint: index = Σ_k factor_k · Π_(j>k) size_j"
        return None

    return run_check("index_of", check)


# -- 01 VAE and β-VAE ----------------------------------------------------------------------------


def check_reconstruction_loss(fn: Callable) -> bool:
    """fn(logits (B, C, H, W), x (B, C, H, W) of 0/1) -> −log p(x|z) of a Bernoulli decoder, summed over the pixels
    and averaged over the batch (nats per image), computed from the logits."""

    def check():
        g = torch.Generator().manual_seed(3)
        logits = torch.randn(5, 1, 7, 9, generator=g) * 3  # not 64 x 64: the formula is general
        x = (torch.rand(5, 1, 7, 9, generator=g) < 0.3).float()
        got = torch.as_tensor(fn(logits, x))
        ref = objectives.reconstruction_loss(logits, x)
        if got.numel() != 1:
            return f"expected one number (nats per image), got shape {tuple(got.shape)}"
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        if close(got, bce(logits, x)):
            return "that is the mean over the pixels too: sum over each image's pixels, then average over the batch"
        if close(got, ref * len(x)):
            return "you summed over the batch: average over the images (nats per image)"
        if close(got, bce(torch.sigmoid(logits), x, reduction="sum") / len(x)):
            return "the sigmoid is applied twice: binary_cross_entropy_with_logits takes the logits themselves"
        if close(got, ((torch.sigmoid(logits) - x) ** 2).sum() / len(x)):
            return "that is a squared error: a Bernoulli decoder's −log p(x|z) is the binary cross-entropy"
        if close(got, -ref):
            return "the sign is flipped: the reconstruction term is −log p(x|z), a positive number of nats"
        if not close(got, ref):
            return "wrong value. Hint: −Σ_pixels [x log σ(ℓ) + (1 − x) log(1 − σ(ℓ))], averaged over the batch"
        # stability: a confident decoder (|logit| ~ 100) must not give inf or nan (log σ(ℓ) = −softplus(−ℓ))
        sure = torch.tensor([[[[100.0, -100.0], [-100.0, 100.0]]]])
        target = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]])
        got = torch.as_tensor(fn(sure, target))
        if not torch.isfinite(got).all() or not close(got, objectives.reconstruction_loss(sure, target), 1e-3):
            return (f"with logits of ±100 your function gives {got.item():.4g} instead of "
                    f"{objectives.reconstruction_loss(sure, target).item():.4g}: σ(100) rounds to 1 in float32, so "
                    "log(1 − σ) is log 0. Work from the logits: F.binary_cross_entropy_with_logits(logits, x, reduction='sum')")
        return None

    return run_check("reconstruction loss", check)


def check_kl_divergence(fn: Callable) -> bool:
    """fn(mu, logvar) -> KL(q(z|x) ‖ N(0, I)) summed over dimensions, averaged over the batch (a scalar)."""

    def check():
        g = torch.Generator().manual_seed(0)
        mu, logvar = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
        got = fn(mu, logvar)
        if torch.as_tensor(got).numel() != 1:
            return f"expected one number (sum over dimensions, mean over the batch), got shape {tuple(torch.as_tensor(got).shape)}"
        per_dim = objectives.kl_per_dimension(mu, logvar)
        if close(got, per_dim.sum(1).sum()):
            return "you summed over the batch: average over it instead (nats per image)"
        if close(got, per_dim.mean()):
            return "you averaged over the latent dimensions too: the KL of a diagonal Gaussian is the sum over its dimensions"
        if close(got, (per_dim + 0.5).sum(1).mean()):
            return "the −1 is missing: KL_j = ½ (mu_j² + exp(logvar_j) − logvar_j − 1), which is 0 when mu = 0 and logvar = 0"
        if close(got, objectives.kl_per_dimension(mu, 2 * logvar).sum(1).mean()):
            return "you used logvar as log σ; it is log σ², the log of the variance, so σ² = exp(logvar)"
        if not close(got, objectives.kl_divergence(mu, logvar)):
            return "wrong value. Hint: KL_j = ½ (mu_j² + exp(logvar_j) − logvar_j − 1); it is 0 when mu = 0, logvar = 0"
        return None

    return run_check("KL divergence", check)


def check_reparameterise(fn: Callable) -> bool:
    """fn(mu, logvar, eps) -> z, with eps ~ N(0, I) given."""

    def check():
        mu, logvar, eps = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]]), torch.tensor([[0.5, 0.5]])
        got = fn(mu, logvar, eps)
        if close(got, mu + logvar.exp() * eps):
            return "you scaled eps by the variance; scale it by the standard deviation exp(logvar / 2)"
        if close(got, mu + logvar * eps) or close(got, mu + 0.5 * logvar * eps):
            return "logvar is a logarithm: the standard deviation is exp(logvar / 2), not logvar itself"
        if close(got, mu + eps):
            return "eps is not scaled: z = mu + σ · eps with σ = exp(logvar / 2)"
        if not close(got, mu + torch.exp(0.5 * logvar) * eps):
            return "z should be mu + exp(logvar / 2) * eps"
        # the point of the trick: gradients reach mu and logvar (dz/dmu = 1, dz/dlogvar = ½ σ ε)
        g = torch.Generator().manual_seed(4)
        mu = torch.randn(3, 4, generator=g, requires_grad=True)
        logvar = torch.randn(3, 4, generator=g, requires_grad=True)
        eps = torch.randn(3, 4, generator=g)
        z = torch.as_tensor(fn(mu, logvar, eps))
        if z.shape != mu.shape:
            return f"for mu of shape {tuple(mu.shape)} z has shape {tuple(z.shape)}: z is elementwise, the shape of mu"
        if not z.requires_grad:
            return ("no gradient reaches mu and logvar: the sample was detached (.detach(), .data, torch.no_grad or a "
                    "sampler such as torch.normal). The trick is that z = mu + σ·eps is an ordinary differentiable expression")
        z.sum().backward()
        if mu.grad is None or not close(mu.grad, torch.ones_like(mu)):
            return "dz/dmu should be 1 for every element: z = mu + σ·eps"
        if logvar.grad is None or not close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps):
            return "dz/dlogvar should be ½ σ eps: compute σ from logvar inside the function (σ = exp(logvar / 2))"
        return None

    return run_check("reparameterisation", check)


# -- 02 The KL decomposition ----------------------------------------------------------------------


def check_log_aggregate_posterior(fn: Callable) -> bool:
    """fn(z (S, d), mu (N, d), logvar (N, d)) -> log q(z) (S,), with q(z) = (1/N) Σ_n N(z; mu_n, diag exp(logvar_n))."""

    def check():
        g = torch.Generator().manual_seed(1)
        z, mu, logvar = torch.randn(6, 3, generator=g), torch.randn(20, 3, generator=g), torch.randn(20, 3, generator=g) * 0.3
        ref = torch.logsumexp(log_normal_per_dim(z, mu, logvar).sum(-1), dim=1) - math.log(20)
        got = torch.as_tensor(fn(z, mu, logvar))
        if got.shape != ref.shape:
            return f"expected shape {tuple(ref.shape)} (one log-density per sample), got {tuple(got.shape)}"
        if close(got, ref + math.log(20)):
            return "off by log N: the mixture averages the N components, so subtract log N"
        per_dim = log_normal_per_dim(z, mu, logvar)  # (S, N, d)
        if close(got, (torch.logsumexp(per_dim, dim=1) - math.log(20)).sum(-1)):
            return ("that is log q̄(z) = Σ_j log q(z_j), the product of the marginals: q(z) is a mixture of whole "
                    "Gaussians, so sum over dimensions inside each component, then logsumexp over components")
        if close(got, per_dim.sum(-1).mean(1)):
            return "you averaged the log-densities; q(z) averages the densities: logsumexp over components, minus log N"
        if not close(got, ref):
            return "wrong value. Hint: sum the per-dimension Gaussian log-densities, then logsumexp over the N components"
        # far from every component (sharp posteriors, as trained ones are), the densities underflow to 0 in float32
        z_far = torch.full((2, 3), 4.0)
        mu_far, logvar_far = torch.randn(20, 3, generator=g) * 0.1, torch.full((20, 3), -6.0)
        ref = torch.logsumexp(log_normal_per_dim(z_far, mu_far, logvar_far).sum(-1), dim=1) - math.log(20)
        got = torch.as_tensor(fn(z_far, mu_far, logvar_far))
        if not torch.isfinite(got).all() or not close(got, ref, 1e-3):
            return (f"for z far from every component (log-densities near {ref[0].item():.0f}) your function gives "
                    f"{got.tolist()}: exp() of such log-densities is 0 in float32, so log(mean(exp(·))) is −inf. "
                    "Stay in logs: torch.logsumexp(log_densities, dim=1) − log N")
        return None

    return run_check("log q(z)", check)


# -- 03 Total correlation and the permutation trick ---------------------------------------------


def check_permute_dims(fn: Callable) -> bool:
    """fn(z (B, d)) -> z with every column permuted independently across the batch."""

    def check():
        g = torch.Generator().manual_seed(2)
        z = torch.randn(256, 6, generator=g)
        out = torch.as_tensor(fn(z.clone()))
        if out.shape != z.shape:
            return f"shape changed from {tuple(z.shape)} to {tuple(out.shape)}"
        if not torch.equal(out.sort(0).values, z.sort(0).values):
            if torch.equal(out.sort(1).values, z.sort(1).values):
                return "you shuffled within each sample (across dimensions): the classic bug. Permute each column across the batch"
            if all(torch.isin(out[:, j], z[:, j]).all() for j in range(6)):
                return ("values repeat and others are missing: you sampled rows with replacement. A permutation "
                        "(torch.randperm) uses every row exactly once, so each marginal is kept exactly")
            return "a column lost or changed values: each column must keep exactly its own values"
        if torch.equal(out, z):
            return "nothing moved: permute the rows of each column"
        if torch.equal(out, z.sort(0).values) or torch.equal(out, z.sort(0, descending=True).values):
            return "you sorted each column: that keeps the values but ties every column to the same order (rank). Draw a random permutation per column"
        unchanged = [j for j in range(6) if torch.equal(out[:, j], z[:, j])]
        if unchanged:
            return f"column(s) {unchanged} did not move: permute every latent dimension, each with its own permutation"
        ranks = [torch.argsort(torch.argsort(out[:, j])) for j in range(6)]
        if all(torch.equal(ranks[0], r) for r in ranks[1:]) or (out[:, None] == z[None]).all(-1).any(1).sum() > 200:
            return "all columns moved together (one permutation of whole rows): draw a separate permutation per column"
        return None

    return run_check("permute_dims", check)


# -- 04 The density-ratio trick -------------------------------------------------------------------


def check_tc_from_logits(fn: Callable) -> bool:
    """fn(logits (B, 2)) -> TC estimate, class 0 meaning "from q(z)"."""

    def check():
        logits = torch.tensor([[2.0, 0.0], [1.0, 1.5], [0.0, -1.0]])
        got = fn(logits)
        if torch.as_tensor(got).numel() != 1:
            return "expected one number: the estimate is the average of logit_0 − logit_1 over the batch"
        if close(got, -objectives.total_correlation_estimate(logits)):
            return "the sign is flipped: class 0 is 'from q(z)', so the estimate is logit_0 − logit_1"
        if close(got, torch.log_softmax(logits, 1)[:, 0].mean()):
            return "that is log D(z); the density ratio is log D / (1 − D) = logit_0 − logit_1"
        probs = torch.softmax(logits, 1)
        if close(got, (probs[:, 0] - probs[:, 1]).mean()):
            return "that is D − (1 − D), a difference of probabilities; the density ratio is their log-ratio, logit_0 − logit_1"
        if not close(got, objectives.total_correlation_estimate(logits)):
            return "wrong value: average logit_0 − logit_1 over the batch"
        return None

    return run_check("TC from logits", check)


def check_gaussian_tc(fn: Callable) -> bool:
    """fn(cov (d, d) numpy) -> TC of N(0, cov) in nats."""

    def check():
        for cov in (np.array([[1.0, 0.6], [0.6, 1.0]]), np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]]), np.eye(3) * 2):
            got, ref = float(fn(cov)), gaussian_total_correlation(cov)
            if abs(ref) > 1e-9 and abs(got - 2 * ref) < 1e-6:
                return "twice the TC: the ½ is missing, TC = ½ (Σ_j log Σ_jj − log det Σ)"
            if abs(ref) > 1e-9 and abs(got + ref) < 1e-6:
                return "the sign is flipped: TC is a KL divergence, never negative; log det Σ ≤ Σ_j log Σ_jj (Hadamard)"
            if abs(got - (-0.5 * np.linalg.slogdet(cov)[1])) < 1e-6 and abs(got - ref) > 1e-6:
                return ("−½ log det Σ is the TC only when every variance is 1: divide out the variances, "
                        "TC = ½ (Σ_j log Σ_jj − log det Σ)")
            if abs(got - ref) > 1e-6:
                return f"for cov = {cov.tolist()} expected {ref:.4f}, got {got:.4f}. Hint: ½ (Σ log Σ_jj − log det Σ)"
        return None

    return run_check("Gaussian TC", check)


# -- 05 FactorVAE -------------------------------------------------------------------------------


def check_discriminator_loss(fn: Callable) -> bool:
    """fn(disc, z, z_perm) -> D's loss, with z from q(z) (class 0) and z_perm permuted (class 1).

    It must not let gradient reach z (the encoder): detach it.
    """

    def check():
        from ..models import Discriminator

        torch.manual_seed(0)
        disc = Discriminator(4, hidden=16, hidden_layers=2)
        z = torch.randn(32, 4, requires_grad=True)
        zp = torch.randn(32, 4)
        loss = fn(disc, z, zp)
        with torch.no_grad():
            ref = objectives.discriminator_loss(disc(z), disc(zp))
        if close(loss.detach(), objectives.discriminator_loss(disc(zp), disc(z)).detach()):
            return "the classes are swapped: z from q(z) is class 0, permuted z is class 1"
        if close(loss.detach(), len(z) * ref):
            return "you summed the cross-entropies over the batch: average them (as F.cross_entropy does by default)"
        if close(loss.detach(), 2 * ref):
            return "the ½ is missing: D's loss is the mean of its two cross-entropies, one per class"
        if not close(loss.detach(), ref):
            return "wrong value: ½ [CE(D(z), 0) + CE(D(z_perm), 1)]"
        loss.backward()
        if z.grad is not None and z.grad.abs().sum() > 0:
            return "D's loss sends gradient into z, and so into the encoder: use z.detach()"
        return None

    return run_check("discriminator loss", check)
