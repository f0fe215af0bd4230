"""What the whole-step checkers (:mod:`fvae_lib.exercises.steps`) share: small seeded networks and batches, optimisers
that record the gradient each update applies, a hook that records what D is shown, and the comparison of a step's
terms with the library's, each difference named by the classic mistake that produces it."""
from __future__ import annotations

import copy

import torch

from ..algorithm import METHODS
from ..models import VAE, Discriminator

GRAD_TOL = 1e-4  # relative, per parameter: ‖g_i − g_ref,i‖ ≤ GRAD_TOL · ‖g_ref,i‖ (see relative_gap)
TERM_TOL = 1e-4  # relative, on each returned term
Z_DIM, BATCH = 6, 12  # not dSprites' 10 and 64: a step that hard-codes either fails


class Recorder:
    """Everything a step did: the updates in order (with the gradients they applied), and every batch D saw."""

    def __init__(self):
        self.updates: list[tuple[str, list[torch.Tensor]]] = []
        self.seen_by_d: list[tuple[int, torch.Tensor]] = []  # (updates so far, D's input)

    def optimiser(self, name: str, params, lr: float = 1e-3):
        recorder = self

        class Recording(torch.optim.SGD):
            def step(self, closure=None):
                grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                         for group in self.param_groups for p in group["params"]]
                recorder.updates.append((name, grads))
                return super().step(closure)

        return Recording(list(params), lr=lr)

    def watch(self, disc: torch.nn.Module):
        """Record every batch D is shown: a hook on its first layer, so ``disc(z)``, ``disc.forward(z)``,
        ``disc.net(z)`` and keyword calls are all seen."""
        first = next((m for m in disc.modules() if not list(m.children())), disc)
        return first.register_forward_hook(lambda module, inputs, output: self.seen_by_d.append(
            (len(self.updates), inputs[0].detach().clone())))

    def watch_decoder(self, vae: torch.nn.Module):
        """Record every code the decoder is given (the sample z, or whatever a step decodes instead)."""
        self.decoded: list[torch.Tensor] = []
        first = next(m for m in vae.decoder.modules() if not list(m.children()))
        return first.register_forward_hook(lambda module, inputs, output: self.decoded.append(inputs[0].detach().clone()))



def relative_gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """The largest relative difference of one parameter's gradient, ‖a_i − b_i‖ / ‖b_i‖, over the parameters (a
    tensor whose gradient is tiny beside the others' is measured against a millionth of their total instead). Per
    parameter, since the decoder's gradients outweigh the encoder's by orders of magnitude."""
    total = sum(float(y.pow(2).sum()) for y in b) ** 0.5
    return max(float((x - y).norm()) / max(float(y.norm()), 1e-6 * total, 1e-12) for x, y in zip(a, b))


def as_terms(result, model: str) -> dict | str:
    """The step's terms as a dict of float tensors, or what is wrong with what it returned."""
    wanted = set(METHODS[model].terms.names()) | {"kl_per_dim"}
    if not isinstance(result, dict):
        try:
            result = {name: getattr(result, name) for name in wanted}
        except AttributeError:
            return (f"the step returned {type(result).__name__}; return its terms by name, a dict with keys "
                    f"{sorted(wanted)} (or the library's {METHODS[model].terms.__name__})")
    missing, unknown = wanted - set(result), set(result) - wanted
    if missing or unknown:
        return f"the step's terms: missing {sorted(missing)}, unknown {sorted(unknown)}; a {model} step returns {sorted(wanted)}"
    return {k: torch.as_tensor(v).detach().float() for k, v in result.items()}


def close_to(a: torch.Tensor, b: torch.Tensor, tol: float = TERM_TOL) -> bool:
    """Same shape, and equal to ``tol`` relative (a thousandth of a nat absolute near 0)."""
    return a.shape == b.shape and bool(((a - b).abs() <= tol * (b.abs() + 1e-3)).all())


def term_mistake(got: dict, ref: dict, ctx: dict) -> str | None:
    """The first returned term that differs from the library's, and the classic mistake behind it."""
    order = [k for k in ("recon", "kl", "tc", "loss", "d_loss", "d_acc", "kl_per_dim") if k in ref]
    for name in order:
        g, r = got[name], ref[name]
        if close_to(g, r):
            continue
        if name == "recon":
            if close_to(g * ctx["pixels"], r):
                return "recon is averaged over the pixels: sum the binary cross-entropy over each image's 4,096 pixels, then average over the batch (nats per image)"
            if close_to(g, r * ctx["batch"]):
                return "recon is summed over the batch: average it over the images (nats per image)"
            if close_to(g, ctx["recon_from_mu"]):
                return "recon was computed from the decoded means: decode a sample z = μ + σ·ε (one per image), not μ"
            return f"recon is {g.item():.4g}, expected {r.item():.4g}: F.binary_cross_entropy_with_logits(logits, x, reduction='sum') / batch size"
        if name == "kl":
            if close_to(g, r * ctx["batch"]):
                return "kl is summed over the batch: sum over the latents, then average over the images"
            if close_to(g * ctx["z_dim"], r):
                return "kl is averaged over the latents too: the KL of a diagonal Gaussian is the sum over its latents"
            return f"kl is {g.item():.4g}, expected {r.item():.4g}: ½ Σ_j (μ_j² + exp(logvar_j) − logvar_j − 1), averaged over the batch"
        if name == "tc":
            if close_to(g, -r):
                return "the TC estimate has the wrong sign: class 0 is 'from q(z)', so TC ≈ mean(logit_0 − logit_1) of D(z)"
            return f"tc is {g.item():.4g}, expected {r.item():.4g}: mean(logit_0 − logit_1) of D on the sample z of batch B"
        if name == "loss":
            return (f"loss is {g.item():.4g}, expected {r.item():.4g}: " + ctx["loss_formula"]
                    + (" (is β on the reconstruction instead of the KL?)" if close_to(g, ctx["beta_on_recon"]) else ""))
        if name == "d_loss":
            if close_to(g, ctx["d_loss_swapped"]):
                return "D's classes are swapped: the sample z of B is class 0, the permuted z′ of B′ class 1"
            if close_to(g, 2 * r):
                return "d_loss lacks the ½: it is the mean of D's two cross-entropies, ½ [CE(D(z), 0) + CE(D(z′_perm), 1)]"
            return f"d_loss is {g.item():.4g}, expected {r.item():.4g}: ½ [CE(D(z), 0) + CE(D(z′_perm), 1)] (F.cross_entropy averages)"
        if name == "d_acc":
            return f"d_acc is {g.item():.4g}, expected {r.item():.4g}: the share of both batches D classifies right (objectives.discriminator_accuracy)"
        if name == "kl_per_dim":
            return "kl_per_dim should be the KL of each latent averaged over the batch, shape (z_dim,)"
    return None


def rows_in(rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each row of ``rows``, whether it is (to rounding) a row of ``pool``."""
    if len(pool) == 0:
        return torch.zeros(len(rows), dtype=torch.bool)
    return ((rows[:, None] - pool[None]).abs().amax(-1) <= 1e-5).any(1)


def same_columns(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Every column of ``a`` holds exactly the values of the same column of ``b`` (a permutation of them)."""
    return a.shape == b.shape and bool(((a.sort(0).values - b.sort(0).values).abs() <= 1e-5).all())


class StepSetup:
    """Small networks and data (6 latents, batch 12, a narrow D), seeded; ``fresh()`` gives an identical copy."""

    def __init__(self, with_disc: bool, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.vae = VAE(Z_DIM)
            self.disc = Discriminator(Z_DIM, hidden=64, hidden_layers=3) if with_disc else None
        # two iterations of two independent batches each: sparse binary images, like dSprites'
        self.batches = [[(torch.rand(BATCH, 1, 64, 64, generator=g) < 0.08).float() for _ in range(2)] for _ in range(2)]
        self.seed = seed

    def fresh(self):
        return copy.deepcopy(self.vae), copy.deepcopy(self.disc)

    def noise(self, it: int = 0) -> torch.Generator:
        """The noise generator handed to the step at iteration ``it`` (a fresh one each iteration, so a step that
        draws its permutations elsewhere still gets the same ε in the next)."""
        return torch.Generator().manual_seed(self.seed + 7 + it)


def explain_error(err: Exception) -> str:
    text = str(err)
    if "modified by an inplace operation" in text:
        return ("PyTorch refused a backward through a graph whose weights an optimiser step had already changed in place "
                "(the classic error of code written before PyTorch 1.5): the discriminator's loss reused the VAE step's "
                "graph after its update. Compute D's loss on z.detach() (the sample of B, drawn before the update) and "
                f"on the permuted z′, after the VAE update. ({type(err).__name__}: {text.splitlines()[0]})")
    if "backward through the graph a second time" in text:
        return ("a second backward went through the VAE's graph, freed by the first: D's loss must not reach the "
                "encoder, so feed D z.detach() and the permuted z′ (computed without gradient)")
    return f"your step raised {type(err).__name__}: {text}"


def fitted_weights(got: list[torch.Tensor], parts: list[list[torch.Tensor]]) -> tuple[list[float], float]:
    """The weights w that make Σ_i w_i · parts[i] closest to the gradient ``got`` (least squares over every
    parameter), and how far that fit still is from ``got`` (:func:`relative_gap`, parameter by parameter). A step
    whose loss weighs its terms otherwise (a fixed β or γ, β on the wrong term) shows here as weights other than
    the ones it was given, with a fit that leaves nothing over."""
    a = torch.stack([torch.cat([g.flatten() for g in part]).double() for part in parts], 1)  # (P, terms)
    b = torch.cat([g.flatten() for g in got]).double()
    w = torch.linalg.lstsq(a, b[:, None]).solution[:, 0]
    fit = [sum(float(wi) * part[k].double() for wi, part in zip(w, parts)) for k in range(len(got))]
    return w.tolist(), relative_gap([g.double() for g in got], fit)
