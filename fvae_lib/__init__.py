"""fvae_lib: FactorVAE ("Disentangling by Factorising", Kim & Mnih, ICML 2018) as a small tested library."""
from .data import BatchSampler, DatasetError, DSprites, GroundTruthData, render_dsprites
from .display import show_figures_in_notebooks

__version__ = "0.2.0"
__all__ = ["BatchSampler", "DatasetError", "DSprites", "GroundTruthData", "render_dsprites"]

# In a notebook, the library's figures (plain matplotlib Figures, no pyplot) show as pictures from the
# first import on, whatever the backend; outside IPython this does nothing.
show_figures_in_notebooks()
