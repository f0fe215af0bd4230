"""One training iteration of β-VAE and of FactorVAE (the paper's Algorithm 2), returning named terms.

    terms = factor_vae_step(vae, disc, opt_vae, opt_d, x1, x2, gamma=35.0)
    terms.recon, terms.kl, terms.tc, terms.loss, terms.d_loss, terms.d_acc, terms.kl_per_dim

Everything of the method is here; the trainer (:mod:`fvae_lib.train`) draws the batches, calls a step,
logs the terms and saves checkpoints. :data:`METHODS` says, for each model, what the trainer needs to call
its step: the networks and optimisers, the batches, the hyperparameters, in that order. A step of your own
with the same signature plugs into the trainer (``Trainer(config, run, step=my_step)``). The loss terms and
their equations are in :mod:`fvae_lib.objectives`.
"""
from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Union

import torch

from .gaussians import reparameterise
from .models import Discriminator
from .objectives import (
    beta_vae_loss,
    discriminator_accuracy,
    discriminator_loss,
    factor_vae_loss,
    kl_per_dimension,
    permute_dims,
    reconstruction_loss,
    total_correlation_estimate,
)

Autocast = Callable[[], ContextManager]


class _Terms:
    """Named terms of one iteration (detached tensors, nats per image), and the same as one logged row."""

    @classmethod
    def names(cls) -> list[str]:
        """The scalar terms, in the order :meth:`as_row` puts them (the per-latent KL follows them)."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "kl_per_dim"]

    def as_row(self) -> torch.Tensor:
        """Every term in one tensor, to log without a host sync: the scalars, then kl_per_dim."""
        return torch.cat([torch.stack([getattr(self, n) for n in self.names()]), self.kl_per_dim])


@dataclass(frozen=True)
class BetaVAETerms(_Terms):
    recon: torch.Tensor  # −E_q(z|x) log p(x|z)
    kl: torch.Tensor  # KL(q(z|x) ‖ p(z)), summed over latents
    loss: torch.Tensor  # recon + β · KL, what the step minimised
    kl_per_dim: torch.Tensor  # (d,) the KL of each latent


@dataclass(frozen=True)
class FactorVAETerms(_Terms):
    recon: torch.Tensor  # −E_q(z|x) log p(x|z)
    kl: torch.Tensor  # KL(q(z|x) ‖ p(z)), summed over latents
    tc: torch.Tensor  # the discriminator's TC estimate on batch B, mean(logit_0 − logit_1)
    loss: torch.Tensor  # recon + β · KL + γ · TC, what the VAE step minimised
    d_loss: torch.Tensor  # the discriminator's cross-entropy (ln 2 at chance)
    d_acc: torch.Tensor  # the share of both batches D classified right (0.5 at chance)
    kl_per_dim: torch.Tensor  # (d,) the KL of each latent


def vae_forward(vae, x: torch.Tensor, noise: torch.Generator | None = None, autocast: Autocast = nullcontext):
    """Encode, sample z ~ q(z|x) and decode: (recon, KL per latent averaged over the batch (d,), z)."""
    with autocast():
        logits, mu, logvar, z = vae(x, noise)
    recon = reconstruction_loss(logits.float(), x)
    kl_dims = kl_per_dimension(mu.float(), logvar.float()).mean(0)  # (d,) nats
    return recon, kl_dims, z


def beta_vae_step(vae, opt_vae, x: torch.Tensor, beta: float, noise: torch.Generator | None = None,
                  autocast: Autocast = nullcontext) -> BetaVAETerms:
    """One gradient step on the negative β-VAE objective, recon + β · KL, for the batch ``x``."""
    recon, kl_dims, _ = vae_forward(vae, x, noise, autocast)
    kl = kl_dims.sum()
    loss = beta_vae_loss(recon, kl, beta)
    opt_vae.zero_grad(set_to_none=True)
    loss.backward()
    opt_vae.step()
    return BetaVAETerms(recon.detach(), kl.detach(), loss.detach(), kl_dims.detach())


def factor_vae_step(vae, disc, opt_vae, opt_d, x1: torch.Tensor, x2: torch.Tensor, gamma: float, beta: float = 1.0,
                    noise: torch.Generator | None = None, autocast: Autocast = nullcontext, *,
                    reuse_d_of_z: bool = True, d_backward_by_hand: bool = True) -> FactorVAETerms:
    """Algorithm 2, one iteration, on two independent batches ``x1`` (B) and ``x2`` (B′).

    1. VAE step on B: minimise recon + β·KL + γ·TC (Eq. 2), TC = mean(logit_0 − logit_1) of D(z) (Eq. 3).
       The gradient flows through D into the encoder, but D's weights take no gradient (the backward is told
       to fill only the VAE's: ``inputs=``) and ``opt_vae`` holds only the encoder and decoder, so D is left
       exactly as it was.
    2. Discriminator step: z from B (sampled before the VAE update) as class 0, and permute_dims(z′) of B′
       (Algorithm 1) as class 1. D's loss must not reach the encoder: the classic bug is to let it in, or to
       backpropagate it through the VAE step's graph after the VAE update (PyTorch ≥ 1.5 refuses).

    Class 0's logits are D(z) of step 1, reused (``reuse_d_of_z``, the default): D has not changed since,
    so they are the logits D(z.detach()) would give, and D's backward is told to fill D's gradients only
    (``inputs=``), so it never enters the updated encoder. That saves D's forward on B, about 5% of an
    iteration's FLOPs. ``reuse_d_of_z=False`` runs D once on the concatenation of z.detach() and
    permute_dims(z′) instead, as Algorithm 2 is usually written; both train alike (benchmarks/README.md).
    With the reuse, D's backward over its two batches is written out as one pass over both
    (:meth:`Discriminator.backward_by_hand`; ``d_backward_by_hand=False`` leaves it to autograd, two passes):
    the same gradients up to the order of the sums, and faster. It applies to the library's
    :class:`~fvae_lib.models.Discriminator` as written (``runs_as_written``: not a subclass, not compiled, no
    hooks or parametrizations, every parameter trained); any other D goes to autograd.
    D runs in fp32 even under a bf16 ``autocast`` (its TC estimate drifted in bf16; benchmarks/README.md).
    """
    recon, kl_dims, z = vae_forward(vae, x1, noise, autocast)
    kl = kl_dims.sum()
    vae_params = [p for p in vae.parameters() if p.requires_grad]
    by_hand = reuse_d_of_z and d_backward_by_hand and isinstance(disc, Discriminator) and disc.runs_as_written()
    if by_hand:  # D's weights are in this graph, and the VAE's backward below leaves them alone
        d_z, d_inputs_z = disc.forward_keeping_inputs(z)
    else:
        d_z = disc(z)
    tc = total_correlation_estimate(d_z)
    loss = factor_vae_loss(recon, kl, tc, gamma, beta)
    opt_vae.zero_grad(set_to_none=True)
    # retained (autograd's reuse only): D's part of the graph serves D's update
    loss.backward(inputs=vae_params, retain_graph=reuse_d_of_z and not by_hand)
    opt_vae.step()

    with torch.no_grad(), autocast():
        mu2, logvar2 = vae.encoder(x2)
        z_perm = permute_dims(reparameterise(mu2.float(), logvar2.float(), noise), noise)
    opt_d.zero_grad(set_to_none=True)
    if by_hand:  # D on z′ without a graph; the gradient at the logits from autograd, D's backward by hand
        with torch.no_grad():
            d_perm, d_inputs_perm = disc.forward_keeping_inputs(z_perm)
        logits_0, logits_1 = d_z.detach().requires_grad_(), d_perm.requires_grad_()
        with torch.enable_grad():
            d_loss = discriminator_loss(logits_0, logits_1)
            grad_0, grad_1 = torch.autograd.grad(d_loss, [logits_0, logits_1])
        disc.backward_by_hand(torch.cat([grad_0, grad_1]),
                              [torch.cat([a.detach(), b]) for a, b in zip(d_inputs_z, d_inputs_perm)])
    else:
        if reuse_d_of_z:
            logits_0, logits_1 = d_z, disc(z_perm)
        else:
            logits = disc(torch.cat([z.detach(), z_perm]))  # one pass for both classes
            logits_0, logits_1 = logits[:len(z)], logits[len(z):]
        d_loss = discriminator_loss(logits_0, logits_1)
        d_loss.backward(inputs=[p for p in disc.parameters() if p.requires_grad])  # D's only: never the encoder
    opt_d.step()
    d_acc = discriminator_accuracy(logits_0.detach(), logits_1.detach())
    return FactorVAETerms(recon=recon.detach(), kl=kl.detach(), tc=tc.detach(), loss=loss.detach(),
                          d_loss=d_loss.detach(), d_acc=d_acc, kl_per_dim=kl_dims.detach())


@dataclass(frozen=True)
class Method:
    """What a training loop needs to know of one model's iteration.

    The loop calls ``step(*networks, *optimisers, *batches, *hyperparameters, noise, autocast)``: for FactorVAE
    ``step(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast)``, for β-VAE
    ``step(vae, opt_vae, x, beta, noise, autocast)``, the signatures of :func:`factor_vae_step` and
    :func:`beta_vae_step`.
    """

    step: Callable[..., Union[BetaVAETerms, FactorVAETerms]]  # the library's step
    terms: type  # the named terms it returns
    batches: int  # independent minibatches an iteration takes
    hyperparameters: tuple[str, ...]  # the config fields passed to it, in order
    discriminator: bool  # whether a discriminator trains beside the VAE (networks: vae, disc)


METHODS = {
    "betavae": Method(beta_vae_step, BetaVAETerms, batches=1, hyperparameters=("beta",), discriminator=False),
    "factorvae": Method(factor_vae_step, FactorVAETerms, batches=2, hyperparameters=("gamma", "beta"), discriminator=True),
}
