"""Loss terms against their definitions, and permute_dims against Algorithm 1."""
import math

import pytest
import torch

from fvae_lib.objectives import (
    discriminator_accuracy,
    discriminator_loss,
    kl_divergence,
    kl_per_dimension,
    permute_dims,
    reconstruction_loss,
    total_correlation_estimate,
)


def test_permute_dims_keeps_every_column_and_mixes_rows():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 10, generator=g)
    zp = permute_dims(z, g)
    # each column is a permutation of the same column: the marginals are kept exactly
    assert torch.equal(zp.sort(0).values, z.sort(0).values)
    # the dimensions are permuted independently, so (almost) no row survives whole
    same_rows = (zp[:, None, :] == z[None, :, :]).all(-1).any(1).sum().item()
    assert same_rows <= 2
    # and the columns do not all share one permutation (that would keep the joint)
    order = [torch.argsort(torch.argsort(zp[:, j])) for j in range(10)]
    assert not all(torch.equal(order[0], o) for o in order[1:])


def test_permute_dims_breaks_the_joint_of_correlated_codes():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4096, 1, generator=g)
    z = torch.cat([x, x + 0.1 * torch.randn(4096, 1, generator=g)], 1)  # corr ≈ 0.995
    corr = torch.corrcoef(permute_dims(z, g).T)[0, 1].item()
    assert abs(corr) < 0.06
    # the classic bug, shuffling within each sample, keeps no column's marginal
    wrong = z.flip(1)
    assert not torch.equal(wrong.sort(0).values, z.sort(0).values)


def test_permute_dims_is_reproducible_and_checks_its_input():
    z = torch.randn(64, 5)
    a = permute_dims(z, torch.Generator().manual_seed(3))
    b = permute_dims(z, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="batch, dims"):
        permute_dims(torch.randn(4))


def test_reconstruction_loss_is_nats_per_image():
    x = torch.bernoulli(torch.full((8, 1, 64, 64), 0.3))
    assert math.isclose(reconstruction_loss(torch.zeros_like(x), x).item(), 4096 * math.log(2), rel_tol=1e-5)
    logits = torch.randn_like(x)
    manual = -(x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))).sum() / 8
    assert math.isclose(reconstruction_loss(logits, x).item(), manual.item(), rel_tol=1e-4)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(16, 10), torch.randn(16, 10)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p)
    torch.testing.assert_close(kl_per_dimension(mu, logvar), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kl_divergence(mu, logvar), ref.sum(1).mean(), rtol=1e-5, atol=1e-5)
    assert kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3)).item() == 0.0


def test_tc_estimate_and_discriminator_loss_agree_on_the_class_convention():
    joint = torch.tensor([[2.0, -1.0], [1.0, 0.0]])  # D says "from q(z)" (class 0)
    perm = torch.tensor([[-1.0, 1.0], [0.0, 3.0]])  # D says "permuted" (class 1)
    assert total_correlation_estimate(joint).item() == pytest.approx(2.0)  # mean of (3, 1)
    assert discriminator_accuracy(joint, perm).item() == 1.0
    assert discriminator_loss(joint, perm).item() < math.log(2)
    # swapping the classes makes D wrong everywhere and its loss larger
    assert discriminator_loss(perm, joint).item() > math.log(2)
    assert discriminator_loss(torch.zeros(5, 2), torch.zeros(5, 2)).item() == pytest.approx(math.log(2))


def test_permuting_many_batches_leaves_a_1_over_B_share_of_the_dependence():
    # n batches at once: each batch keeps its own columns' values, and is permuted independently of the others
    g = torch.Generator().manual_seed(2)
    rho = 0.8
    chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))
    for batch in (8, 64):
        z = torch.randn(2**20 // batch, batch, 2, generator=g) @ chol.T
        zp = permute_dims(z, g)
        assert torch.equal(zp.sort(1).values, z.sort(1).values)
        # pooled over batches, a permuted row keeps correlation rho / B: two of its coordinates come from the same
        # input row with probability 1/B. Margin: 5 standard errors of a correlation near 0 over 2^20 rows.
        pooled = torch.corrcoef(zp.reshape(-1, 2).T)[0, 1].item()
        assert abs(pooled - rho / batch) < 5 / 2**10, (batch, pooled)
    with pytest.raises(ValueError, match="batch, dims"):
        permute_dims(torch.zeros(2, 3, 4, 5))
