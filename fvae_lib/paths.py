"""Where the project's folders are: an environment variable, else the source checkout's folder, else a fallback.

    $FVAE_DATA_DIR   the dSprites file and caches     data/ of a checkout, else ~/.cache/fvae_lib
    $FVAE_RUNS_DIR   run folders                      runs/ of a checkout, else ./runs
    $FVAE_REFERENCE  the shipped reference sweep       reference/ of the checkout
"""
from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent  # the repository, when the package runs from a clone


def in_checkout() -> bool:
    """Whether this package runs from a source checkout (``pip install -e .``), not from an installed wheel."""
    return (CHECKOUT / "pyproject.toml").is_file()


def configured_folder(env: str, name: str, fallback: Path, existing: bool = False) -> Path:
    """``$env`` if set; else ``<checkout>/<name>`` when running from a checkout (and, with ``existing``, when that
    folder is there); else ``fallback``."""
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    if in_checkout() and (not existing or (CHECKOUT / name).is_dir()):
        return CHECKOUT / name
    return fallback
