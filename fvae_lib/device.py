"""Which device "auto" means: the GPU when there is one, else the CPU. (Resolving a name, with the error for a
GPU that is not there, is :func:`fvae_lib.config.resolve_device`.)"""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The GPU (cuda) when PyTorch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name() -> str:
    """What trains here, in words: the GPU's name, or the CPU with its thread count."""
    if default_device().type == "cuda":
        return torch.cuda.get_device_name(0)
    return f"cpu ({torch.get_num_threads()} threads)"
