"""fvae_lib: FactorVAE ("Disentangling by Factorising", Kim & Mnih, ICML 2018) as a small tested library."""
from .data import BatchSampler, DatasetError, DSprites, GroundTruthData, render_dsprites

__version__ = "0.1.0"
__all__ = ["BatchSampler", "DatasetError", "DSprites", "GroundTruthData", "render_dsprites"]
