"""The KL decomposition adds up; the TC estimators agree with the analytic TC of a Gaussian."""
import numpy as np
import pytest
import torch

from fvae_lib.gaussians import gaussian_total_correlation
from fvae_lib.decomposition import (
    kl_decomposition,
    kl_decomposition_from_posteriors,
    minibatch_stratified_tc,
    minibatch_weighted_tc,
)


def correlated(d=3, rho=0.7):
    cov = np.full((d, d), rho)
    np.fill_diagonal(cov, 1.0)
    return cov, torch.tensor(np.linalg.cholesky(cov))


def test_decomposition_terms_add_up():
    g = torch.Generator().manual_seed(0)
    _, chol = correlated()
    mu = torch.randn(800, 3, generator=g, dtype=torch.float64) @ chol.T
    logvar = torch.log(torch.rand(800, 3, generator=g, dtype=torch.float64) * 0.3 + 0.05)
    r = kl_decomposition_from_posteriors(mu, logvar, num_samples=4000, generator=g)
    # E_x KL(q(z|x) ‖ p(z)) = I(x; z) + KL(q(z) ‖ p(z)), within Monte-Carlo error
    assert abs(r["mutual_info"] + r["marginal_kl"] - r["avg_kl"]) < 4 * r["mc_error"]
    # KL(q(z) ‖ p(z)) = TC + Σ_j KL(q(z_j) ‖ p(z_j)), exactly on the same samples
    assert r["total_correlation"] + r["dimwise_kl"] == pytest.approx(r["marginal_kl"], abs=1e-9)
    assert 0 < r["mutual_info"] <= r["log_n"] + 1e-6 and r["total_correlation"] > 0.3


def test_decomposition_of_a_model_on_a_dataset_uses_every_image(small_replica):
    from fvae_lib.models import VAE

    torch.manual_seed(0)
    r = kl_decomposition(VAE(10), small_replica, np.random.default_rng(0), num_samples=600)
    assert r["num_points"] == len(small_replica) and r["log_n"] == pytest.approx(np.log(len(small_replica)))
    assert abs(r["mutual_info"] + r["marginal_kl"] - r["avg_kl"]) < 4 * r["mc_error"] + 1e-6
    assert len(r["dimwise_kl_per_dim"]) == 10
    sub = kl_decomposition(VAE(10), small_replica, np.random.default_rng(0), num_samples=600, num_points=300)
    assert sub["num_points"] == 300


def _grid_code(sizes=(8, 10, 12), sigma=0.05):
    """A perfectly disentangled code of a factor grid: latent j is factor j's value, sharp posteriors."""
    from fvae_lib.data import FactorObservations
    from fvae_lib.encoding import EncodedGrid

    toy = FactorObservations(sizes)
    factors = toy.factors_of(np.arange(len(toy)))
    mu = np.stack([np.linspace(-2, 2, s)[factors[:, j]] for j, s in enumerate(sizes)], axis=1)
    return toy, EncodedGrid(toy, np.concatenate([mu, np.full_like(mu, 2 * np.log(sigma))], axis=1))


def test_tc_of_a_factorised_code_over_the_whole_dataset_is_zero_and_a_subsample_inflates_it():
    toy, posteriors = _grid_code()
    r = kl_decomposition(None, toy, np.random.default_rng(0), num_samples=3000, posteriors=posteriors)
    # the aggregate posterior of the whole grid is a product of per-latent mixtures: TC = 0 exactly
    assert abs(r["total_correlation"]) < 1e-6, r["total_correlation"]
    assert r["mutual_info"] == pytest.approx(np.log(len(toy)), abs=0.05)  # sharp posteriors: I(x;z) ≈ log N
    # 200 of the 960 points: their mixture no longer factorises, and several nats of TC appear
    d = posteriors.codes.shape[1] // 2
    pick = torch.as_tensor(np.random.default_rng(1).choice(len(toy), 200, replace=False))
    codes = torch.as_tensor(posteriors.codes, dtype=torch.float64)[pick]
    biased = kl_decomposition_from_posteriors(codes[:, :d], codes[:, d:], 3000, torch.Generator().manual_seed(0))
    assert biased["total_correlation"] > 1.0, biased["total_correlation"]


def test_tc_of_a_dense_correlated_gaussian_code_matches_the_analytic_value():
    # 10,000 posteriors N(m_n, 0.3² I) with means m_n ~ N(0, R): q(z) ≈ N(0, R + 0.09 I)
    g = torch.Generator().manual_seed(0)
    cov, chol = correlated(d=2, rho=0.8)
    mu = torch.randn(10000, 2, generator=g, dtype=torch.float64) @ chol.T
    logvar = torch.full_like(mu, np.log(0.09))
    r = kl_decomposition_from_posteriors(mu, logvar, num_samples=3000, generator=g)
    truth = gaussian_total_correlation(cov + 0.09 * np.eye(2))  # 0.387 nats; seeds 0-2 gave errors <= 0.017
    # Monte-Carlo error (4 standard errors) plus 0.03 nats for a finite sample of means
    assert abs(r["total_correlation"] - truth) < 4 * r["tc_error"] + 0.03, (r["total_correlation"], truth, r["tc_error"])


def _toy_batch(m, s2=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    cov, chol = correlated()
    mu = torch.randn(m, 3, generator=g, dtype=torch.float64) @ chol.T
    logvar = torch.full_like(mu, np.log(s2))
    z = mu + np.sqrt(s2) * torch.randn(m, 3, generator=g, dtype=torch.float64)
    return z, mu, logvar, gaussian_total_correlation(cov + s2 * np.eye(3))


def test_minibatch_stratified_tc_agrees_with_the_analytic_tc():
    estimates, truth = [], None
    for seed in range(4):
        z, mu, logvar, truth = _toy_batch(2048, seed=seed)
        estimates.append(minibatch_stratified_tc(z, mu, logvar, dataset_size=10**6).item())
    assert abs(np.mean(estimates) - truth) < 0.08, (estimates, truth)


def test_minibatch_weighted_tc_agrees_once_its_documented_offset_is_removed():
    n, estimates = 10**6, []
    for seed in range(4):
        z, mu, logvar, truth = _toy_batch(2048, seed=seed)
        estimates.append(minibatch_weighted_tc(z, mu, logvar, dataset_size=n).item() - 2 * np.log(n))
    assert abs(np.mean(estimates) - truth) < 0.08, (estimates, truth)


def test_the_draws_do_not_depend_on_the_arithmetic_precision():
    """ε and the indices come from the CPU generator in one dtype: float32 and float64 arithmetic (a GPU, or more
    than 50,000 points, against a CPU below) estimate from the same samples and agree far inside the Monte Carlo error."""
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g) - 2
    terms = {dtype: kl_decomposition_from_posteriors(mu, logvar, 400, torch.Generator().manual_seed(5), "cpu", dtype)
             for dtype in (torch.float32, torch.float64)}
    for key in ("mutual_info", "total_correlation", "marginal_kl"):
        assert abs(terms[torch.float32][key] - terms[torch.float64][key]) < 1e-3 * max(1.0, abs(terms[torch.float64][key]))
    assert terms[torch.float64]["tc_error"] > 1e-2  # what different draws would differ by: 10x more than allowed above


@pytest.mark.parametrize("num_samples", [0, 1, -5, 2.5])
def test_too_few_decomposition_samples_are_refused(num_samples):
    mu = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="num_samples must be a whole number >= 2"):
        kl_decomposition_from_posteriors(mu, mu, num_samples)


def test_the_stratified_estimator_refuses_a_batch_of_one():
    z = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        minibatch_stratified_tc(z, z, z, dataset_size=100)
