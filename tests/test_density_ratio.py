"""The density-ratio trick on its own: a discriminator trained on a sampler's codes estimates their TC."""
import numpy as np
import pytest
import torch

from fvae_lib.density_ratio import estimate_tc, fit_tc_discriminator
from fvae_lib.gaussians import gaussian_total_correlation


@pytest.mark.parametrize("rho, tol", [(0.8, 0.1), (0.0, 0.05)])
def test_discriminator_estimates_gaussian_total_correlation(rho, tol):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    chol = torch.tensor(np.linalg.cholesky(cov), dtype=torch.float32)

    def sample(n, g):
        return torch.randn(n, 2, generator=g) @ chol.T

    disc, _ = fit_tc_discriminator(sample, 2, steps=1000, seed=0)
    estimate = estimate_tc(disc, sample(20000, torch.Generator().manual_seed(9)))
    truth = gaussian_total_correlation(cov)  # -½ log det R: 0.511 nats at rho = 0.8
    assert abs(estimate - truth) < tol, (estimate, truth)


def test_posterior_sampler_draws_codes_a_discriminator_can_train_on(small_replica):
    from fvae_lib.density_ratio import estimate_tc, fit_tc_discriminator, posterior_sampler
    from fvae_lib.models import VAE

    torch.manual_seed(0)
    sample = posterior_sampler(VAE(4), small_replica, np.random.default_rng(0), num_points=500)
    z = sample(64, torch.Generator().manual_seed(0))
    assert z.shape == (64, 4) and torch.isfinite(z).all()
    disc, losses = fit_tc_discriminator(sample, 4, steps=20)
    assert len(losses) == 20 and np.isfinite(estimate_tc(disc, sample(256, torch.Generator().manual_seed(1))))
