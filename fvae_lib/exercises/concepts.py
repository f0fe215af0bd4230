"""Checkers for the conceptual exercises: predict a number or a direction, then check it; each names the
classic wrong predictions."""
from __future__ import annotations

import math
from typing import Callable

from .common import run_check

__all__ = ['check_images_with_two_factors_fixed', 'check_beta_prediction', 'check_information_cap', 'check_collision_correlation', 'check_unequal_classes', 'check_penalty_weights', 'check_chance_score']


def _answer(name: str, fn: Callable, right: float, tol: float, wrong: list, hint: str) -> bool:
    """Check ``fn()`` against ``right`` (within ``tol``); name the first of ``wrong`` = [(value, tol, message)] it matches."""

    def check():
        got = float(fn())
        if abs(got - right) <= tol:
            return None
        for value, close, message in wrong:
            if abs(got - value) <= close:
                return message
        return f"{got:g} is not it. Hint: {hint}"

    return run_check(name, check)


def check_images_with_two_factors_fixed(fn: Callable) -> bool:
    """fn() -> how many dSprites images have shape = heart and scale = the largest (sizes 3, 6, 40, 32, 32)."""
    return _answer("images with two factors fixed", fn, 40 * 32 * 32, 0.5, [
        (737_280 / 3, 0.5, "that fixes only the shape: the scale is fixed too, so divide by its 6 values as well"),
        (737_280 / 6, 0.5, "that fixes only the scale: the shape is fixed too, so divide by its 3 values as well"),
        (737_280 / 9, 0.5, "fixing two factors divides by the product of their sizes (3 × 6), not their sum"),
        (40 + 32 + 32, 0.5, "the free factors multiply: every orientation with every posX with every posY"),
    ], "the grid is a product: fix two factors and the others still take every combination of their values")


def check_beta_prediction(fn: Callable) -> bool:
    """fn() -> (reconstruction error, average KL) as β grows from 1 to 16: each "up" or "down"."""

    def check():
        recon, kl = (str(v).strip().lower() for v in fn())
        if {recon, kl} - {"up", "down"}:
            return "answer each with 'up' or 'down'"
        if (recon, kl) == ("up", "down"):
            return None
        if (recon, kl) == ("down", "down"):
            return ("β weighs the KL more, and the optimiser lowers it by taking information out of the code; "
                    "less information about x in z means a worse reconstruction: up, not down")
        if (recon, kl) == ("up", "up"):
            return "the KL is the term β multiplies: a larger β makes it costlier, so training drives it down"
        return "both the wrong way round: a larger β penalises the KL (down), and reconstruction pays (up)"

    return run_check("β prediction", check)


def check_information_cap(fn: Callable) -> bool:
    """fn() -> the largest I(x; z) the decomposition can report over the full dSprites grid, in nats.

    log N = 13.51 for N = 737,280; strictly H(x) = 13.48, since orientations 0 and 2π draw the same picture (18,432
    images appear twice): the tolerance takes both."""
    n = 737_280
    return _answer("the cap on I(x; z)", fn, math.log(n), 0.04, [
        (math.log2(n), 0.01, "that is in bits (log base 2); the library works in nats, the natural log"),
        (math.log(11_520), 0.01, "that is the 11,520-image sub-grid of the cpu and gpu modes; the full grid has 737,280"),
        (math.log(64), 0.01, "that is a batch of 64: the cap is log N for the N images q(z) is built from, the whole dataset"),
        (float(n), 1.0, "I(x; z) ≤ log N, not N: with N equally likely images, x carries log N nats in all"),
    ], "x is one of N equally likely images, so it holds log N nats; the code cannot hold more about it")


def check_collision_correlation(fn: Callable) -> bool:
    """fn() -> the correlation left between two latents (ρ = 0.6) after permuting batches of B = 16, pooled."""
    return _answer("correlation left after permuting", fn, 0.6 / 16, 1e-4, [
        (0.0, 1e-4, "not 0: in 1 of every B rows two permutations pick the same input row, and that row keeps ρ"),
        (0.6, 1e-4, "the permutation removes most of the dependence; only the collisions, 1 row in B, keep it"),
        (0.6 / 256, 1e-5, "the chance that two given permutations collide on a row is 1/B, not 1/B²"),
        (0.6 * (1 - 1 / 16), 1e-4, "that is the share of rows that do *not* collide; the collided rows carry the correlation"),
    ], "two independent permutations send the same input row to a given output row with probability 1/B")


def check_unequal_classes(fn: Callable) -> bool:
    """fn() -> D*'s logit gap at a z where log q(z)/q̄(z) = 0.3, trained on twice as many q samples as q̄ samples,
    with one cross-entropy averaged over all samples pooled together."""
    right = 0.3 + math.log(2)
    return _answer("the logit gap with unequal classes", fn, right, 1e-3, [
        (0.3, 1e-3, "that holds for equal classes only: with n₀ = 2 n₁, D* = 2q / (2q + q̄), so the gap gains log 2"),
        (0.3 - math.log(2), 1e-3, "the class with more samples is q (class 0), which pushes the gap up: + log 2"),
        (0.6, 1e-3, "the class sizes enter as an added log n₀/n₁, not as a factor on the log-ratio"),
    ], "redo the derivation with n₀ q(z) log D + n₁ q̄(z) log(1 − D): D* = n₀q / (n₀q + n₁q̄)")


def check_penalty_weights(fn: Callable) -> bool:
    """fn() -> (weight on TC, weight on I(x; z)) in the penalty β·KL + γ·TC at β = 2, γ = 10 (the library's
    ``factor_vae_loss`` with its ``beta``)."""

    def check():
        tc, info = (float(v) for v in fn())
        if (tc, info) == (12.0, 2.0):
            return None
        if tc == 10.0:
            return "the KL term already contains the TC, weighted by β = 2; γ adds it 10 more times: β + γ"
        if tc == 11.0:
            return "the KL term carries the TC with its own weight β = 2, not 1: β + γ"
        if tc == 20.0:
            return "γ·TC is added to β·KL, not multiplied by β: the TC's weight is β + γ"
        if info != 2.0:
            return "I(x; z) is only in the KL term, whose weight is β = 2: that is its weight, whatever γ"
        return "write β·KL + γ·TC with KL = I + TC + Σ_j KL(q(z_j) ‖ p(z_j)) and collect the terms"

    return run_check("penalty weights", check)


def check_chance_score(fn: Callable) -> bool:
    """fn() -> about what the FactorVAE metric scores for a code of 10 noise latents (5 factors)."""
    return _answer("score of a code that ignores the data", fn, 0.2, 0.03, [
        (0.0, 0.05, "not 0: whatever factor the classifier assigns a latent, a uniformly drawn factor matches it 1 time in 5"),
        (0.5, 0.05, "this is not a yes/no decision: with K = 5 factors, a guess is right about 1 time in 5"),
        (0.1, 0.03, "the number of latents does not enter: chance is 1 over the number of factors, K = 5"),
    ], "each vote's factor is drawn uniformly from the K = 5 factors and the latent it picks tells nothing about it")
