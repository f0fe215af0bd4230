"""Encoding a dataset with a trained encoder: batched, frozen for speed on a CPU, or every image once.

    represent = encoder_representation(vae)               # observations -> (n, d) encoder means
    grid = EncodedGrid.encode(data, represent)             # every image encoded once, looked up after
    codes, factors = sample_codes(data, represent, 5000, rng)

The metrics (:mod:`fvae_lib.metrics`) and the KL decomposition (:mod:`fvae_lib.decomposition`) take
their codes from here.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

from .gaussians import reparameterise

Represent = Callable[[torch.Tensor], np.ndarray]


def encoder_representation(vae, device: str | torch.device | None = None, batch_size: int | None = None,
                           dtype: torch.dtype | None = None, freeze: bool | None = None,
                           output: str = "mean", seed: int = 0) -> Represent:
    """``represent`` for a trained VAE: the encoder mean, batched on the model's device, in eval mode.

    output: "mean" (d columns, what the metrics score), "posterior" (2d columns: mean, then log-variance
        of q(z|x), what :func:`mig_sampled` needs) or "sample" (d columns: a fresh z ~ q(z|x) per image and
        call, what the VAE's decoder and FactorVAE's discriminator see in training; ``seed`` seeds the draws).

    On a CPU the images go in as channels_last, the layout oneDNN's convolutions prefer (same result).
    batch_size: default 128 on a CPU, 2048 on a GPU (benchmarks/README.md says why and what was measured).
    dtype: optionally run the encoder under autocast (e.g. ``torch.bfloat16`` on a CPU with bf16 units);
        the default fp32 keeps the codes exactly as the metrics' definitions assume.
    freeze: encode with a frozen TorchScript copy of the encoder, whose convolution weights are packed
        once for oneDNN and fused with their ReLUs: faster than eager, with codes equal to 1e-7
        (benchmarks/README.md has the rates). Default: on a CPU in fp32. Each
        call checks the weights against the copy's and rebuilds it if they changed (an optimiser step,
        ``load_state_dict``), so ``represent`` always sees the current encoder; if the encoder can't be
        traced, the eager one is used.
    """
    if output not in ("mean", "posterior", "sample"):
        raise ValueError(f"output must be 'mean', 'posterior' or 'sample', got {output!r}")
    noise = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on every device
    device = torch.device(device) if device is not None else next(vae.parameters()).device
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if batch_size is None:
        batch_size = 128 if device.type == "cpu" else 2048
    if freeze is None:
        freeze = device.type == "cpu" and dtype is None
    frozen = _FrozenEncoder(vae.encoder) if freeze else None

    @torch.inference_mode()
    def represent(observations: torch.Tensor) -> np.ndarray:
        was_training = vae.training
        vae.eval()
        out = []
        encoder = vae.encoder
        try:
            for start in range(0, len(observations), batch_size):
                x = torch.as_tensor(observations[start : start + batch_size]).to(device).contiguous(memory_format=memory_format)
                if frozen is not None:
                    if start == 0:  # checked once per call: the weights can't change inside it
                        encoder = frozen.for_input(x)
                    mu, logvar = encoder(x)
                elif dtype is not None:
                    with torch.autocast(device.type, dtype=dtype):
                        mu, logvar = vae.encoder(x)
                else:
                    mu, logvar = vae.encoder(x)
                mu, logvar = mu.float(), logvar.float()
                if output == "sample":
                    eps = torch.randn(mu.shape, generator=noise).to(mu.device)  # drawn on the CPU: the same on any device
                    out.append(reparameterise(mu, logvar, eps=eps).cpu())
                else:
                    out.append((mu if output == "mean" else torch.cat([mu, logvar], dim=1)).cpu())
        finally:
            vae.train(was_training)
        if not out:
            raise ValueError("represent got no observations")
        return torch.cat(out).numpy()

    return represent


class _FrozenEncoder:
    """A frozen, inference-optimised TorchScript copy of an encoder, rebuilt when its weights change.

    Freezing bakes the weights into the graph, so each use first compares the encoder's parameters
    with the copy it was built from (exactly, ~0.1 ms: version counters would be cheaper but fused
    optimisers don't bump them).
    """

    def __init__(self, encoder: torch.nn.Module):
        self.encoder = encoder
        self.weights: list[torch.Tensor] | None = None
        self.module = None
        self.failed = False

    def _current(self) -> bool:
        params = list(self.encoder.parameters())
        return (self.weights is not None and len(params) == len(self.weights)
                and all(p.shape == w.shape and torch.equal(p, w) for p, w in zip(params, self.weights)))

    def for_input(self, x: torch.Tensor):
        """A callable encoder for batches like ``x``: the frozen copy (rebuilt if stale), else the eager one."""
        if self.failed:
            return self.encoder
        if not self._current():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(self.encoder.eval(), x, check_trace=False)
                    self.module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                self.weights = [p.detach().clone() for p in self.encoder.parameters()]
            except Exception as err:  # noqa: BLE001 -- any encoder TorchScript can't take: run it eagerly
                warnings.warn(f"encoding eagerly: the encoder could not be frozen for fast inference ({err})",
                              RuntimeWarning, stacklevel=4)
                self.failed = True
                return self.encoder
        return self.module


def represent_factors(data, represent: Represent, factors: np.ndarray, rng: np.random.Generator,
                      chunk: int = 8192) -> np.ndarray:
    """Codes (n, d) float64 of the observations with the given factor classes, in chunks."""
    out = [np.asarray(represent(data.sample_observations(factors[s : s + chunk], rng)), dtype=np.float64)
           for s in range(0, len(factors), chunk)]
    codes = np.concatenate(out)
    if codes.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"represent must return an (n, d) array, got shape {codes.shape} for n = {len(factors)}")
    return codes


def sample_codes(data, represent: Represent, n: int, rng: np.random.Generator, chunk: int = 8192):
    """(codes (n, d), factors (n, K)) for n observations drawn uniformly from the grid."""
    factors = data.sample_factors(n, rng)
    return represent_factors(data, represent, factors, rng, chunk), factors


class EncodedGrid:
    """A ground-truth dataset whose observations are a representation's codes, every grid cell encoded once.

    The metrics' defaults encode about three million images between them (a million for the FactorVAE
    metric, two million for the β-VAE metric), four times the 737,280 images of dSprites. Encoding the
    grid once and looking the codes up is then cheaper, and gives the same scores as encoding on the
    fly: the grid follows the data protocol, consumes the Generator in the same way, and its
    ``represent`` is the identity::

        grid = EncodedGrid.encode(data, encoder_representation(vae))
        factor_vae_score(grid, grid.represent, rng)   # == factor_vae_score(data, represent, rng)

    Only for datasets whose observation is a function of its factors (dSprites is noise-free); the
    codes use float32, about 30 MB for dSprites with 10 latents.
    """

    def __init__(self, data, codes: np.ndarray):
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or len(codes) != len(data):
            raise ValueError(f"codes must have shape (len(data) = {len(data)}, d), got {codes.shape}")
        self.data, self.codes = data, codes
        self.factor_sizes = tuple(data.factor_sizes)
        self.factor_names = tuple(getattr(data, "factor_names", ()))
        self.factor_values = getattr(data, "factor_values", None)

    @classmethod
    def encode(cls, data, represent: Represent, chunk: int = 8192, progress: bool = False) -> "EncodedGrid":
        """Encode every observation of ``data``, in grid (row-major) order, ``chunk`` at a time."""
        n = len(data)
        codes = None
        starts = range(0, n, chunk)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding the grid", unit="chunk")
        for s in starts:
            idx = np.arange(s, min(s + chunk, n))
            z = np.asarray(represent(data.sample_observations(data.factors_of(idx))), dtype=np.float32)
            if z.ndim != 2 or len(z) != len(idx):
                raise ValueError(f"represent must return an (n, d) array, got shape {z.shape} for n = {len(idx)}")
            if codes is None:
                codes = np.empty((n, z.shape[1]), dtype=np.float32)
            codes[idx] = z
        return cls(data, codes)

    @classmethod
    def encode_posteriors(cls, data, vae, progress: bool = False) -> tuple["EncodedGrid", "EncodedGrid"]:
        """q(z|x) of every image of ``data`` (columns: means, then log-variances) and, from the same pass, the
        grid of the encoder means alone (the first half of the columns): what the metrics score."""
        posteriors = cls.encode(data, encoder_representation(vae, output="posterior"), progress=progress)
        return posteriors, cls(data, posteriors.codes[:, : posteriors.codes.shape[1] // 2])

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        return f"EncodedGrid({self.data!r}, codes {self.codes.shape})"

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.data.sample_factors(n, rng)

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        return self.data.index_of(factors)

    def factors_of(self, indices: np.ndarray) -> np.ndarray:
        return self.data.factors_of(indices)

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """The codes (n, d) of the cells with these factor classes."""
        return torch.from_numpy(self.codes[self.data.index_of(factors)])

    @staticmethod
    def represent(observations) -> np.ndarray:
        """The identity: the observations of an EncodedGrid are already codes."""
        return np.asarray(observations)
