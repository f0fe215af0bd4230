"""The protocol every ground-truth dataset follows, its row-major grid helpers, and a toy dataset.

Every consumer (the trainer, the metrics, the notebooks) sees a dataset through :class:`GroundTruthData`:
factor names, sizes and values, ``sample_factors(n, rng)``, ``sample_observations(factors, rng)``,
``index_of`` / ``factors_of`` in row-major order, and ``len``."""
from __future__ import annotations

import math
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class GroundTruthData(Protocol):
    """A dataset with known, discrete generative factors laid out on a full row-major grid."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: list[np.ndarray]

    def __len__(self) -> int: ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, K) int64 factor classes, each drawn uniformly and independently."""

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """float32 tensor (n, C, H, W) of the images with these factor classes."""

    def index_of(self, factors: np.ndarray) -> np.ndarray: ...

    def factors_of(self, indices: np.ndarray) -> np.ndarray: ...


class FactorGridMixin:
    """``sample_factors``, ``index_of`` and ``factors_of`` for any dataset laid out row-major over
    ``factor_sizes`` (the last factor fastest), as dSprites is."""

    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, K) int64 classes, each factor uniform and independent."""
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Row-major index, the last factor fastest: sum_k factors[:, k] * prod(sizes[k+1:])."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != len(self.factor_sizes):
            raise ValueError(f"factors must have shape (n, {len(self.factor_sizes)}), got {factors.shape}")
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

    def factors_of(self, indices: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`index_of`: (n,) indices -> (n, K) int64 classes."""
        return np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=1).astype(np.int64)


class DatasetError(ValueError):
    """A dataset file or cache is missing, damaged or not what it claims to be.

    The message names the file, says what is wrong and what to do about it.
    """


class FactorObservations(FactorGridMixin):
    """Observations that *are* the factors: float32 (n, K), factor k's class scaled to [0, 1].

    The ideal representation of it is the identity, so it calibrates metrics (an identity code should
    score near 1, a random one near chance) and lets notebooks show a metric without training a model.
    """

    def __init__(self, factor_sizes: Sequence[int] = (3, 6, 10, 8, 8), factor_names: Sequence[str] | None = None):
        if any(int(s) < 1 for s in factor_sizes):
            raise ValueError(f"factor sizes must be >= 1, got {tuple(factor_sizes)}")
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_names = tuple(factor_names) if factor_names else tuple(f"v{k}" for k in range(len(self.factor_sizes)))
        self.factor_values = [np.linspace(0.0, 1.0, s) for s in self.factor_sizes]

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        factors = np.asarray(factors)
        scaled = [self.factor_values[k][factors[:, k]] for k in range(len(self.factor_sizes))]
        return torch.from_numpy(np.stack(scaled, axis=1).astype(np.float32))
