"""Gaussians and their mixtures: the analytic TC, densities of collapsed posteriors, mixture entropies, and the
TC a permuted batch lets a discriminator see."""
import numpy as np
import pytest
import torch

from fvae_lib.decomposition import kl_decomposition_from_posteriors
from fvae_lib.gaussians import gaussian_total_correlation, mixture_entropies


def test_gaussian_tc_is_minus_half_log_det_of_the_correlation():
    cov = np.array([[4.0, 1.2], [1.2, 1.0]])  # correlation 0.6
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - 0.36))
    assert gaussian_total_correlation(np.diag([3.0, 0.5, 2.0])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_total_correlation(np.array([[1.0, 2.0], [2.0, 1.0]]))

def test_the_tc_a_permuted_batch_lets_a_discriminator_see_falls_short_by_order_1_over_B():
    from fvae_lib.gaussians import tc_seen_through_permutation

    seen = {b: tc_seen_through_permutation(0.8, b, num_samples=100_000) for b in (8, 64, 256, 10**6)}
    tc = seen[8]["tc"]
    assert abs(tc - 0.5108) < 1e-4
    assert 0 < seen[8]["seen"] < seen[64]["seen"] < seen[256]["seen"] < tc  # more of the TC as B grows
    for b in (64, 256):  # the shortfall is about c/B with c between 1 and 2 nats here
        assert 1.0 < (tc - seen[b]["seen"]) * b < 2.0, (b, seen[b])
    assert abs(seen[10**6]["seen"] - tc) < 1e-4
    with pytest.raises(ValueError, match="rho"):
        tc_seen_through_permutation(1.0, 64)

def test_a_collapsed_posterior_gives_finite_densities_not_nan():
    """logvar below about -88.7 made exp(-logvar) overflow float32, and 0 · inf gave NaN mutual information."""
    from fvae_lib.gaussians import log_normal

    mu = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    logvar = torch.tensor([[-100.0, 0.0], [-95.0, 0.0], [0.0, -120.0]])
    at_mean = log_normal(mu, mu, logvar)
    assert torch.isfinite(at_mean).all() and (at_mean[:, 0][:2] > 40).all()
    assert log_normal(mu + 1.0, mu, logvar)[0, 0] == -float("inf")  # zero density away from a point mass, not NaN
    terms = kl_decomposition_from_posteriors(mu, logvar, 50, torch.Generator().manual_seed(0), "cpu", torch.float32)
    assert all(np.isfinite(terms[k]) for k in ("mutual_info", "total_correlation", "dimwise_kl", "mc_error", "tc_error"))
    assert terms["mutual_info"] == pytest.approx(np.log(3), abs=1e-3)  # three distinct points, each its own posterior


def test_mixture_entropies_match_closed_forms():
    n = 4000
    gen = torch.Generator().manual_seed(0)
    mu = torch.zeros(n, 2)
    mu[: n // 2, 1], mu[n // 2 :, 1] = -10.0, 10.0  # dim 1: two far-apart components of equal weight
    logvar = torch.zeros(n, 2)
    z = mu + torch.randn(n, 2, generator=gen)
    h = mixture_entropies(z, mu, logvar, num_samples=3000, generator=gen)
    gauss = 0.5 * np.log(2 * np.pi * np.e)
    assert h[0].item() == pytest.approx(gauss, abs=0.05)
    assert h[1].item() == pytest.approx(gauss + np.log(2), abs=0.05)
