"""Files that a crash or a kill never leaves half-written: write to a temporary file beside the target, sync,
then rename it into place (``os.replace`` is atomic on POSIX and Windows). Checkpoints, dataset caches,
results and figures all go through here."""
from __future__ import annotations

import os
from pathlib import Path



def write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` whole and synced to a temporary file beside ``path``; the caller renames it into place."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers see all or nothing."""
    os.replace(write_temporary(path, data), path)


def remove_stale_temporaries(path: Path) -> None:
    for stale in path.parent.glob(f"{path.name}.tmp-*"):
        try:
            stale.unlink()
        except OSError:
            pass
