"""Checkers for the exercises of notebooks 06 and 07, which score representations and compare settings."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..metrics import factor_vae_vote, majority_vote_accuracy
from .common import diagnose, run_check

__all__ = ['check_factor_vae_vote', 'check_majority_vote_accuracy', 'check_dominates', 'check_separated']


# -- 06 Measuring disentanglement ---------------------------------------------------------------


def _vote_cases() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(codes (L, d), global variances (d,), active (d,)) of three votes, 7 latents, built so that each classic
    wrong answer picks another latent than the right one in at least one of them."""
    rng = np.random.default_rng(11)

    def case(L, std, ratio, active):
        base = rng.normal(size=(L, len(std)))
        base = (base - base.mean(0)) / base.std(0, ddof=1)  # each column's sample variance exactly 1
        codes = rng.normal(size=len(std)) + base * np.sqrt(ratio) * np.asarray(std)  # variance: ratio * std^2
        return codes, np.square(np.asarray(std, float)), np.asarray(active)

    on, off = True, False
    return [
        # latent 1 has collapsed (std 0.01) and varies least relative to it; latent 6 has the smallest variance
        # among the kept ones (a small scale); latent 4 varies least relative to its own scale: the vote
        case(40, [1.0, 0.01, 2.0, 1.5, 1.0, 3.0, 0.2], [1.0, 0.05, 0.6, 0.7, 0.1, 0.5, 0.9],
             [on, off, on, on, on, on, on]),
        # latent 2 has a large scale and the smallest ratio; latent 5's variance over its std is smaller
        case(25, [1.0, 2.0, 5.0, 1.0, 1.5, 0.3, 1.0], [0.8, 0.9, 0.05, 0.7, 0.6, 0.3, 0.95],
             [off, on, on, on, on, on, on]),
        # latent 3 is constant (a global variance of 0: a division by zero when normalised); latent 6 is the vote
        case(33, [1.0, 1.0, 1.0, 0.0, 0.5, 2.0, 1.0], [0.9, 0.8, 0.7, 0.0, 0.6, 0.5, 0.2],
             [on, on, on, off, on, on, on]),
    ]


def _vote_mistakes() -> list[tuple[Callable, str]]:
    def among_active(normalise):
        def vote(codes, global_var, active):
            local = codes[:, active].var(0, ddof=1)
            return int(np.flatnonzero(active)[np.argmin(normalise(local, global_var[active]))])
        return vote

    def ignoring_active(codes, global_var, active):
        return int(np.argmin(codes.var(0, ddof=1) / global_var))

    return [
        (lambda c, g, a: int(np.flatnonzero(a)[np.argmax(c[:, a].var(0, ddof=1) / g[a])]),
         "you took the latent that varies most; the vote goes to the one that varies least (argmin) with the factor fixed"),
        (among_active(lambda local, g: local),
         "you compared raw variances: a latent with a small scale always wins. Divide each by its variance over the whole data"),
        (among_active(lambda local, g: local / np.sqrt(g)),
         "you divided by the standard deviation: divide the variance by the global variance, so every latent is on the same scale"),
        (ignoring_active, "you let a collapsed latent vote: leave out the latents that are not active"),
        (lambda c, g, a: int(np.argmin(c[:, a].var(0, ddof=1) / g[a])),
         "that is the winner's position among the active latents only: return its index in the whole code "
         "(np.flatnonzero(active) maps one to the other)"),
    ]


def check_factor_vae_vote(fn: Callable) -> bool:
    """fn(codes (L, d), global_var (d,), active (d,) bool) -> the index (0..d-1) of the latent that gets the vote."""

    def check():
        cases = _vote_cases()
        with np.errstate(invalid="ignore", divide="ignore"):
            got = [int(fn(c.copy(), g.copy(), a.copy())) for c, g, a in cases]
            want = [factor_vae_vote(c, g, a) for c, g, a in cases]
            if got == want:
                return None
            for mistake, message in _vote_mistakes():
                if got == [mistake(c, g, a) for c, g, a in cases]:
                    return message
        i = next(i for i in range(len(cases)) if got[i] != want[i])
        return (f"vote {i + 1} of {len(cases)} went to latent {got[i]}, not {want[i]}. Hint: among the active latents, the "
                "smallest variance over the L codes divided by the global variance")

    return run_check("FactorVAE vote", check)


def check_majority_vote_accuracy(fn: Callable) -> bool:
    """fn(votes (K factors, d dims) int array) -> accuracy of the majority-vote classifier on those votes."""

    def check():
        # 3 factors x 4 latents, not diagonal-dominant: every classic wrong answer gives a different number
        votes = np.array([[2, 9, 0, 1], [7, 1, 0, 6], [0, 3, 4, 5]])
        got = float(fn(votes))
        if abs(got - majority_vote_accuracy(votes)) < 1e-9:  # latents -> factors 1, 0, 2, 1: (7 + 9 + 4 + 6) / 38
            return None
        if abs(got - votes.max(1).sum() / votes.sum()) < 1e-9:
            return "you took the best latent per factor; the classifier maps each latent to its most-voted factor (max over axis 0)"
        if abs(got - np.trace(votes) / votes.sum()) < 1e-9:
            return "you assumed latent j encodes factor j (the diagonal); the classifier learns which factor each latent stands for"
        if abs(got - votes.max(0).sum()) < 1e-9:
            return "that is the number of correct votes: divide by the total number of votes"
        return "wrong value. Hint: Σ_j max_k V[k, j] / Σ V"

    return run_check("majority-vote accuracy", check)


# -- 07 Reproducing the paper -----------------------------------------------------------------------


def check_dominates(fn: Callable) -> bool:
    """fn(a, b) -> True when point a = (error, score) dominates b: no worse on both, strictly better on one."""
    cases = [((100, 0.8), (120, 0.7)), ((120, 0.7), (100, 0.8)), ((100, 0.8), (100, 0.7)), ((100, 0.8), (120, 0.8)),
             ((100, 0.8), (100, 0.8)), ((90, 0.6), (120, 0.8)), ((130, 0.9), (120, 0.8)), ((120, 0.8), (100, 0.8))]
    wrong = [
        (lambda a, b: a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1]),
         "you have the error backwards: a lower reconstruction error is better (the better corner is up and to the left)"),
        (lambda a, b: a[0] <= b[0] and a[1] >= b[1],
         "a point does not dominate itself: it must also be strictly better on at least one axis"),
        (lambda a, b: a[0] < b[0] and a[1] > b[1],
         "a tie on one axis and a win on the other is still domination: use <= and >= on both, and require one strict inequality"),
        (lambda a, b: a[0] < b[0] or a[1] > b[1],
         "better on one axis and worse on the other is a trade, not domination: it must be no worse on both"),
    ]
    return run_check("dominates", lambda: diagnose(fn, cases, _dominates, wrong))


def _dominates(a, b) -> bool:
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def check_separated(fn: Callable) -> bool:
    """fn(seeds_a, seeds_b) -> True when the two settings' seed values do not overlap (every a above every b, or below)."""
    pairs = [([0.60, 0.70], [0.72, 0.80]), ([0.72, 0.80], [0.60, 0.70]), ([0.60, 0.75], [0.70, 0.80]),
             ([0.55, 0.87], [0.69, 0.71]), ([0.9, 0.5], [0.6, 0.4]), ([0.5, 0.6], [0.6, 0.7]), ([0.9, 0.5], [0.4, 0.45]),
             ([0.7, 0.8], [0.7, 0.6])]
    cases = [(np.array(a), np.array(b)) for a, b in pairs]
    wrong = [
        (lambda a, b: a.mean() != b.mean(),
         "the means differ but the seeds overlap: compare the ranges of the seeds (lowest and highest), not the means"),
        (lambda a, b: abs(a.mean() - b.mean()) > 0.05,
         "a gap between the means says nothing about the spread: compare the ranges of the seeds, not the means"),
        (lambda a, b: a[0] != b[0],
         "you compared the first seeds only: use every seed of each setting"),
        (lambda a, b: a[0] > b[-1] or a[-1] < b[0],
         "the seeds need not be sorted: use min() and max(), not the first and last values"),
        (lambda a, b: a.min() >= b.max() or a.max() <= b.min(),
         "ranges that touch are not separated: a seed of each setting scored the same"),
    ]
    return run_check("separated", lambda: diagnose(fn, cases, _separated, wrong))


def _separated(a, b) -> bool:
    return bool(np.min(a) > np.max(b) or np.max(a) < np.min(b))
