"""Which device: "auto" is the GPU when there is one, else the CPU. The one place that decides it."""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The GPU (cuda) when PyTorch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> :func:`default_device`; anything else as given, refusing a GPU that is not there."""
    if str(device) == "auto":
        return default_device()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no GPU is available; use --device cpu")
    return dev


def device_name() -> str:
    """What trains here, in words: the GPU's name, or the CPU with its thread count."""
    if default_device().type == "cuda":
        return torch.cuda.get_device_name(0)
    return f"cpu ({torch.get_num_threads()} threads)"
