"""Checkers for the exercises that ask for a whole training step: a β-VAE step (notebook 01) and one iteration of
Algorithm 2 (notebook 05), each run beside the library's step from the same start and compared term by term.

What the comparison sees. Adam rescales every gradient coordinate by its running size, so float rounding and real
mistakes look alike in the parameters it produces: after three Adam steps on the paper's networks at batch 16, a
right step that runs D twice instead of once on the concatenation differed from the library's parameters by 3.4e-4,
and four classic mistakes by 6.0e-4 to 6.3e-4 (measured when this checker was specified, issue #22). So the checker
compares no parameters after Adam. It hands the step optimisers that record the gradient each ``step()`` applies
(plain SGD underneath), hooks D to record every batch it is shown, and runs the library's step from the same state
beside it. For two iterations in a row it compares:

* the terms the step returns (recon, KL, TC, the losses), to 1e-4 relative;
* the order of the updates: one VAE update, then one discriminator update;
* what D saw: in the VAE update the sample z of batch B; in its own update that same z (drawn before the VAE
  update) as class 0 and a column-wise permutation of z′, the sample of the second batch B′, as class 1;
* the gradient each update applied, parameter by parameter, to 1e-4 relative to its size (float rounding of a
  differently written but equal computation is about 1e-6; the classic mistakes move it by 1e-3 or more).

A difference is named by the classic mistake that produces it (the checker computes each mistake's gradient and
matches it). Randomness must come from the ``noise`` generator the step is given, drawn in Algorithm 2's order (ε
of B, then ε′ of B′, as ``vae(x, noise)`` or ``reparameterise(mu, logvar, noise)`` draw them); the permutation
may come from anywhere, since any permutation of z′'s columns is checked on its own terms.
"""
from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F

from .. import objectives
from ..algorithm import beta_vae_step, factor_vae_step
from ..models import VAE, Discriminator
from .common import run_check
from .replay import (BATCH, GRAD_TOL, Z_DIM, Recorder, StepSetup, as_terms, close_to, explain_error, fitted_weights,
                     relative_gap, rows_in, same_columns, term_mistake)

__all__ = ["check_beta_vae_step", "check_factor_vae_step"]


# -- the β-VAE step (01) -------------------------------------------------------------------------


def check_beta_vae_step(fn: Callable) -> bool:
    """fn(vae, opt_vae, x, beta, noise, autocast) -> the terms of one β-VAE step (recon, kl, loss, kl_per_dim),
    having made one update of ``opt_vae`` on recon + β·KL; compared with :func:`fvae_lib.algorithm.beta_vae_step`."""
    return run_check("β-VAE step", lambda: _check_beta(fn))


def _check_beta(fn: Callable) -> str | None:
    setup, beta = StepSetup(with_disc=False), 2.5  # not the notebooks' 4: a hard-coded beta fails
    runs = {}
    for who, step in (("ref", beta_vae_step), ("you", fn)):
        vae, _ = setup.fresh()
        rec = Recorder()
        opt = rec.optimiser("vae", vae.parameters())
        hook = rec.watch_decoder(vae)
        terms = []
        for it in range(2):
            before = len(rec.updates)
            try:
                result = step(vae, opt, setup.batches[it][0], beta, setup.noise(it), nullcontext)
            except NotImplementedError:
                raise  # not done yet: run_check says so
            except Exception as err:  # noqa: BLE001 -- the learner's bug, reported
                if who == "ref":
                    raise
                return explain_error(err)
            finally:
                if it == 1:
                    hook.remove()
            got = as_terms(result, "betavae")
            if isinstance(got, str):
                return got
            n = len(rec.updates) - before
            if n != 1:
                return f"iteration {it + 1} made {n} updates of opt_vae; a step makes exactly one (opt_vae.step() once)"
            terms.append(got)
        runs[who] = (vae, rec, terms)
    vae0, _ = setup.fresh()
    problem = _explain_sample(runs["you"][1].decoded, runs["ref"][1].decoded[0], vae0, setup.batches[0][0])
    if problem:
        return f"iteration 1: {problem}"
    for it in range(2):
        ctx = _context_beta(vae0 if it == 0 else None, setup, beta)
        problem = term_mistake(runs["you"][2][it], runs["ref"][2][it], ctx)
        if problem:
            return f"iteration {it + 1}: {problem}"
        got, ref = runs["you"][1].updates[it][1], runs["ref"][1].updates[it][1]
        if relative_gap(got, ref) > GRAD_TOL:
            return _explain_vae_gradient(it, got, ref, runs["ref"][1].updates, setup, beta)
    return None


def _grads(loss: torch.Tensor, params: list) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]


def _explain_sample(decoded: list, z_ref: torch.Tensor, vae0, x) -> str | None:
    """None if the decoder was given the sample z the library draws; else what it was given instead."""
    if any(close_to(z, z_ref, 1e-4) for z in decoded):
        return None
    with torch.no_grad():
        mu, _ = vae0.encoder(x)
    if any(close_to(z, mu, 1e-4) for z in decoded):
        return "the decoder was given the means μ: decode a sample z = μ + σ·ε (one per image), not μ"
    return ("the decoder was not given the sample the checker expects, z = μ + exp(½ logvar)·ε with ε drawn from the "
            "noise generator the step is given: draw ε with it (vae(x, noise), or vae.reparameterise(mu, logvar, noise)), "
            "not with torch.randn_like or a sampler, so that the checker can replay your draws")


def _context_beta(vae, setup, beta) -> dict:
    ctx = {"pixels": 64 * 64, "batch": BATCH, "z_dim": Z_DIM, "loss_formula": "recon + β · kl",
           "recon_from_mu": torch.tensor(float("nan")), "beta_on_recon": torch.tensor(float("nan"))}
    if vae is not None:
        x = setup.batches[0][0]
        with torch.no_grad():
            mu, logvar = vae.encoder(x)
            ctx["recon_from_mu"] = objectives.reconstruction_loss(vae.decoder(mu), x)
            _, _, _, z = vae(x, setup.noise())
            recon = objectives.reconstruction_loss(vae.decoder(z), x)
            ctx["beta_on_recon"] = beta * recon + objectives.kl_divergence(mu, logvar)
    return ctx


def _explain_vae_gradient(it, got, ref, ref_updates, setup, beta) -> str:
    if it == 1 and relative_gap(got, [a + b for a, b in zip(ref, ref_updates[0][1])]) < 1e-3:
        return ("iteration 2's gradient still holds iteration 1's: gradients accumulate in .grad until zeroed, so "
                "call opt_vae.zero_grad() before loss.backward()")
    if it == 0:
        vae, _ = setup.fresh()
        x = setup.batches[0][0]
        mu, logvar = vae.encoder(x)
        z = vae.reparameterise(mu, logvar, setup.noise()).detach()
        loss = objectives.reconstruction_loss(vae.decoder(z), x) + beta * objectives.kl_divergence(mu, logvar)
        grads = torch.autograd.grad(loss, list(vae.parameters()), allow_unused=True)
        cut = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, vae.parameters())]
        if relative_gap(got, cut) < 1e-3:
            return ("the reconstruction's gradient does not reach the encoder: z was detached (or drawn without the "
                    "reparameterisation). z = μ + exp(½ logvar)·ε keeps z differentiable in μ and σ")
        _, mu, logvar, z = vae(x, setup.noise(0))
        params = list(vae.parameters())
        parts = [_grads(objectives.reconstruction_loss(vae.decoder(z), x), params),
                 _grads(objectives.kl_divergence(mu, logvar), params)]
        (w_recon, w_kl), residual = fitted_weights(got, parts)
        if residual < 1e-3:
            return (f"your step's loss weighs the reconstruction by {w_recon:.3g} and the KL by {w_kl:.3g}; the β-VAE "
                    f"loss is recon + β·kl with the β the step is given (β = {beta:g} here), not a fixed number")
    return (f"iteration {it + 1}: the VAE update applied a gradient {100 * relative_gap(got, ref):.2g}% away from that "
            "of recon + β·kl (computed on the sample z, one backward, one opt_vae.step())")


# -- one iteration of Algorithm 2 (05) ------------------------------------------------------------


def check_factor_vae_step(fn: Callable) -> bool:
    """fn(vae, disc, opt_vae, opt_d, x1, x2, gamma, beta, noise, autocast) -> the terms of one iteration of
    Algorithm 2 (recon, kl, tc, loss, d_loss, d_acc, kl_per_dim); compared with
    :func:`fvae_lib.algorithm.factor_vae_step`, update by update, for two iterations."""
    return run_check("FactorVAE step (Algorithm 2)", lambda: _check_factor(fn))


D_LR = 1e-2


def _run_factor(step, setup: StepSetup, gamma: float, beta: float, iterations=(0, 1), start: tuple | None = None):
    """For each iteration: the terms, both updates' gradients, what D saw and when, the networks' states before.
    ``start``: the networks' states to begin from (default: the setup's). Or the learner's problem, as a string."""
    vae, disc = _networks(setup, start) if start else setup.fresh()
    rec = Recorder()
    opt_vae, opt_d = rec.optimiser("vae", vae.parameters()), rec.optimiser("d", disc.parameters(), lr=D_LR)
    hook = rec.watch(disc)
    out = []
    try:
        for it in iterations:
            before_updates, before_seen = len(rec.updates), len(rec.seen_by_d)
            states = (copy.deepcopy(vae.state_dict()), copy.deepcopy(disc.state_dict()))
            try:
                result = step(vae, disc, opt_vae, opt_d, *setup.batches[it], gamma, beta, setup.noise(it), nullcontext)
            except NotImplementedError:
                raise  # not done yet: run_check says so
            except Exception as err:  # noqa: BLE001 -- the learner's bug, reported
                if step is factor_vae_step:
                    raise
                return explain_error(err)
            terms = as_terms(result, "factorvae")
            if isinstance(terms, str):
                return terms
            names = [n for n, _ in rec.updates[before_updates:]]
            if names != ["vae", "d"]:
                return (f"iteration {it + 1} updated {names or 'nothing'}: Algorithm 2 makes one VAE update "
                        "(opt_vae.step()) and then one discriminator update (opt_d.step())")
            seen = rec.seen_by_d[before_seen:]
            out.append(dict(terms=terms, vae_grad=rec.updates[before_updates][1], d_grad=rec.updates[before_updates + 1][1],
                            before=states, in_vae=[z for n, z in seen if n == before_updates],
                            in_d=[z for n, z in seen if n == before_updates + 1]))
    finally:
        hook.remove()
    return out


def _after(vae_state: dict, grads: list[torch.Tensor], setup: StepSetup) -> VAE:
    """The VAE after one SGD update (the checker's optimiser) with ``grads`` from ``vae_state``."""
    vae, _ = setup.fresh()
    vae.load_state_dict(vae_state)
    with torch.no_grad():
        for p, g in zip(vae.parameters(), grads):
            p -= 1e-3 * g
    return vae


def _check_factor(fn: Callable) -> str | None:
    setup, gamma, beta = StepSetup(with_disc=True), 17.5, 1.5  # not the notebooks' 35 and 1: hard-coding either fails
    you = _run_factor(fn, setup, gamma, beta)
    if isinstance(you, str):
        return you
    for it in range(2):  # the library's step from where the learner's stood at this iteration
        ref = _run_factor(factor_vae_step, setup, gamma, beta, iterations=(it,), start=you[it]["before"])[0]
        problem = _compare_iteration(it, you[it], ref, you[0], setup, gamma, beta)
        if problem:
            return f"iteration {it + 1}: {problem}"
    return None


def _compare_iteration(it: int, you: dict, ref: dict, you_first: dict, setup: StepSetup, gamma: float,
                       beta: float) -> str | None:
    z = ref["in_vae"][0]  # the sample of B that the library's VAE update showed D
    vae0, disc0 = _networks(setup, you["before"])
    x1, x2 = setup.batches[it]
    # 1. what D saw in the VAE update: the sample z of B (the TC term)
    if not any(close_to(seen, z, 1e-4) for seen in you["in_vae"]):
        return ("in the VAE update D was not shown the sample z of batch B that vae(x1, noise) draws first: the TC term "
                "is mean(logit_0 − logit_1) of D(z), for the same sample z the reconstruction decodes")
    # 2. the VAE's terms, and the gradient its update applied
    with torch.no_grad():
        mu, logvar = vae0.encoder(x1)
        ctx = {"pixels": 64 * 64, "batch": BATCH, "z_dim": Z_DIM, "loss_formula": "recon + β · kl + γ · tc",
               "recon_from_mu": objectives.reconstruction_loss(vae0.decoder(mu), x1),
               "beta_on_recon": torch.tensor(float("nan"))}
    vae_terms = ("recon", "kl", "tc", "loss", "kl_per_dim")  # D's terms depend on the permutation: checked below
    problem = term_mistake({k: you["terms"][k] for k in vae_terms}, {k: ref["terms"][k] for k in vae_terms}, ctx)
    if problem:
        return problem
    if relative_gap(you["vae_grad"], ref["vae_grad"]) > GRAD_TOL:
        return _explain_vae_gradient_factor(it, you, ref, you_first, setup, gamma, beta)
    # 3. what D saw in its own update: z of B (class 0) and a column-wise permutation of z′ of B′ (class 1)
    if not you["in_d"]:
        return ("D was shown nothing between the VAE update and its own: Algorithm 2 encodes B′ after the VAE update, "
                "then trains D on z of B (class 0) and permute_dims(z′) (class 1)")
    rows = torch.cat(you["in_d"])
    rest = rows[~rows_in(rows, z)]  # class 0 may also have been shown to D before the VAE update: D is unchanged by it
    if len(rest) > BATCH:
        return ("D's class 0 is not the sample z of batch B from the VAE update: Algorithm 2 trains D on the very z the "
                "VAE update used, drawn before that update (z.detach()), not a new sample or a re-encoding of x1")
    zprime = _zprime(_after(you["before"][0], you["vae_grad"], setup), x2, setup, it)
    if len(rest) < BATCH:
        return "D saw only one batch in its update: class 1 is permute_dims(z′) of B′, beside class 0, z of B"
    if not same_columns(rest, zprime):
        return _explain_class1(rest, zprime, z)
    if rows_in(rest, zprime).float().mean() > 0.5:
        return "class 1 is z′ itself, or barely permuted: permute every latent dimension (column) with its own permutation"
    # 4. D's terms and gradient, on what it was shown
    with torch.no_grad():
        l0, l1 = disc0(z), disc0(rest)
        d_terms = {"d_loss": objectives.discriminator_loss(l0, l1), "d_acc": objectives.discriminator_accuracy(l0, l1)}
        ctx["d_loss_swapped"] = objectives.discriminator_loss(l1, l0)
        after = copy.deepcopy(disc0)
        for p, g in zip(after.parameters(), you["d_grad"]):
            p -= D_LR * g
        if close_to(you["terms"]["d_acc"], objectives.discriminator_accuracy(after(z), after(rest))):
            d_terms["d_acc"] = you["terms"]["d_acc"]  # measured after D's update: as good a report
    problem = term_mistake({k: you["terms"][k] for k in d_terms}, d_terms, ctx)
    if problem:
        return problem
    d_want = _d_gradient(disc0, z, rest)
    if relative_gap(you["d_grad"], d_want) > GRAD_TOL:
        return _explain_d_gradient(it, you, d_want, you_first, disc0, z, gamma)
    return None


def _networks(setup: StepSetup, states: tuple[dict, dict]):
    vae, disc = setup.fresh()
    vae.load_state_dict(states[0])
    disc.load_state_dict(states[1])
    return vae, disc


def _zprime(vae_after: VAE, x2: torch.Tensor, setup: StepSetup, it: int) -> torch.Tensor:
    """z′ of B′ as Algorithm 2 draws it: encoded by the updated VAE, ε′ drawn from ``noise`` right after ε of B."""
    noise = setup.noise(it)
    with torch.no_grad():
        torch.randn(BATCH, Z_DIM, generator=noise)  # ε of B, drawn first
        mu2, logvar2 = vae_after.encoder(x2)
        return vae_after.reparameterise(mu2, logvar2, noise)


def _d_gradient(disc: Discriminator, z: torch.Tensor, zperm: torch.Tensor) -> list[torch.Tensor]:
    disc = copy.deepcopy(disc)
    return list(torch.autograd.grad(objectives.discriminator_loss(disc(z), disc(zperm)), list(disc.parameters())))


def _explain_class1(got: torch.Tensor, zprime: torch.Tensor, z: torch.Tensor) -> str:
    if same_columns(got, z):
        return ("class 1 permutes the codes of batch B: Algorithm 2 permutes z′, the sample of the second, independent "
                "batch B′ (x2), so the two classes are independent draws")
    if bool(((got.sort(1).values - zprime.sort(1).values).abs() <= 1e-5).all()):
        return ("you permuted within each sample (across the latents): the classic bug. permute_dims shuffles each latent "
                "dimension (column) across the batch, which keeps every marginal and breaks the joint")
    return ("class 1 is not a column-wise permutation of z′, the sample of B′ that Algorithm 2 draws after the VAE "
            "update: encode x2 with the updated encoder, sample with the noise generator (ε′ right after ε of B), "
            "then permute_dims")


def _explain_vae_gradient_factor(it: int, you: dict, ref: dict, you_first: dict, setup: StepSetup, gamma: float,
                                 beta: float) -> str:
    got, want = you["vae_grad"], ref["vae_grad"]
    if it == 1 and relative_gap(got, [a + b for a, b in zip(want, you_first["vae_grad"])]) < 1e-3:
        return "the VAE gradient still holds the previous iteration's: call opt_vae.zero_grad() before loss.backward()"
    # the leak: D's loss on the undetached z, backpropagated into the encoder too
    vae, disc = _networks(setup, you["before"])
    disc.requires_grad_(False)
    x1 = setup.batches[it][0]
    _, _, _, z_live = vae(x1, setup.noise(it))
    # (permuted z′ is computed without gradient, so only the class-0 half of D's loss reaches the encoder)
    leak = torch.autograd.grad(0.5 * F.cross_entropy(disc(z_live), torch.zeros(BATCH, dtype=torch.long)),
                               list(vae.parameters()), allow_unused=True)
    leak = [g if g is not None else torch.zeros_like(p) for g, p in zip(leak, vae.parameters())]
    if relative_gap(got, [a + b for a, b in zip(want, leak)]) < relative_gap(got, want) / 10:
        return ("D's loss reached the encoder: its gradient through the undetached z was added to the VAE's. "
                "Show D z.detach() in its own update, and keep D's backward apart from the VAE's")
    params = list(vae.parameters())
    logits, mu, logvar, z = vae(x1, setup.noise(it))
    parts = [_grads(objectives.reconstruction_loss(logits, x1), params), _grads(objectives.kl_divergence(mu, logvar), params),
             _grads(objectives.total_correlation_estimate(disc(z)), params)]
    (w_recon, w_kl, w_tc), residual = fitted_weights(got, parts)
    if residual < 1e-3 and not (abs(w_recon - 1) < 1e-3 and abs(w_kl - beta) < 1e-2 * beta and abs(w_tc - gamma) < 1e-2 * gamma):
        return (f"your VAE loss weighs the reconstruction by {w_recon:.3g}, the KL by {w_kl:.3g} and the TC by {w_tc:.3g}; "
                f"Algorithm 2's is recon + β·kl + γ·tc with the β and γ the step is given (β = {beta:g}, γ = {gamma:g} "
                "here), not fixed numbers")
    return (f"the VAE update applied a gradient {100 * relative_gap(got, want):.2g}% away from that of recon + β·kl + γ·tc "
            "(tc from D(z) on the sample of B, D's weights as they were)")


def _explain_d_gradient(it: int, you: dict, d_want: list, you_first: dict, disc0: Discriminator, z: torch.Tensor,
                        gamma: float) -> str:
    got = you["d_grad"]
    if all(float(g.abs().sum()) == 0 for g in got):
        return "D's update applied no gradient: is D still frozen (requires_grad_(False)) from the VAE update?"
    disc = copy.deepcopy(disc0)
    from_vae = torch.autograd.grad(gamma * objectives.total_correlation_estimate(disc(z)), list(disc.parameters()))
    if relative_gap(got, [a + b for a, b in zip(d_want, from_vae)]) < relative_gap(got, d_want) / 10:
        return ("D's gradient also holds γ·∂TC/∂D from the VAE update, whose backward filled D's .grad: D's weights must "
                "not learn from the VAE's loss. Zero D's gradients before its own backward (opt_d.zero_grad()), or "
                "freeze D during the VAE update (disc.requires_grad_(False), then True again)")
    if it == 1 and relative_gap(got, [a + b for a, b in zip(d_want, you_first["d_grad"])]) < relative_gap(got, d_want) / 10:
        return "D's gradient still holds the previous iteration's: call opt_d.zero_grad() before d_loss.backward()"
    return (f"D's update applied a gradient {100 * relative_gap(got, d_want):.2g}% away from that of "
            "½ [CE(D(z), 0) + CE(D(z′_perm), 1)] on what it was shown")
