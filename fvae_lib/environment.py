"""What a notebook's setup cell reports (versions, device, mode, runs folder), and Colab: is this Colab, and are
its runs kept when the runtime ends."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch

from .device import device_name
from .modes import Mode, runs_dir


def in_colab() -> bool:
    return "google.colab" in sys.modules


def environment_report(mode: Mode | None = None) -> dict:
    """Versions, device and mode, as one dict a setup cell prints."""
    import matplotlib
    import numpy

    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "device": device_name(),
        "colab": in_colab(),
    }
    if mode is not None:
        report["mode"] = mode.name
        report["training preset"] = mode.preset
    report["runs folder"] = str(runs_dir())
    if runs_are_temporary():
        report["note"] = ("Colab's disk is wiped when the runtime ends; to keep trained runs, run "
                          "`from fvae_lib.environment import keep_runs_on_drive; keep_runs_on_drive()` first")
    return report


def keep_runs_on_drive(folder: str = "fvae-runs") -> Path:
    """On Colab: mount Google Drive and keep runs in ``MyDrive/<folder>``, so they outlive the runtime.

    Sets ``FVAE_RUNS_DIR`` for this kernel; every notebook that calls it reuses the runs found there.
    """
    if not in_colab():
        raise RuntimeError("keep_runs_on_drive() is for Colab; elsewhere set FVAE_RUNS_DIR to any folder")
    from google.colab import drive  # noqa: PLC0415 -- exists only on Colab

    drive.mount("/content/drive")
    path = Path("/content/drive/MyDrive") / folder
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FVAE_RUNS_DIR"] = str(path)
    print(f"runs are kept in {path} (Google Drive)")
    return path


def runs_are_temporary() -> bool:
    """On Colab with runs outside Google Drive: the runtime's disk, wiped when it ends."""
    return in_colab() and not str(runs_dir()).startswith("/content/drive")


