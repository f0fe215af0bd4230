"""Files that a crash or a kill never leaves half-written, and folders that never have two writers.

Writing: to a temporary file beside the target (named for this host, process and a random token, so no
two writers share one), synced, then renamed into place (``os.replace`` is atomic on POSIX and Windows),
then the folder synced so the rename itself survives a power cut. Checkpoints, dataset caches, results,
figures and notebooks all go through here. A temporary left by a writer that was killed is removed by the
next writer of the same file, never one of a writer still alive.

Locking: :class:`FolderLock` holds ``<folder>/.lock`` (pid, host, job id, start time) for as long as a
process writes there. A lock whose process is gone is taken over; a live one is refused with a message
that names it.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import time
from pathlib import Path

_HOST = socket.gethostname().replace("-", "_")  # the name is split on "-" below


def _temporary_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename into it is on disk (a no-op where folders cannot be opened: Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` whole and synced to a temporary file beside ``path``; the caller renames it into place
    (:func:`replace`). Temporaries of ``path`` left by killed writers are removed first."""
    remove_stale_temporaries(path)
    tmp = _temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def replace(tmp: Path, path: Path) -> None:
    """Rename a whole temporary file over ``path`` and sync the folder."""
    os.replace(tmp, path)
    sync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers see all or nothing."""
    path = Path(path)
    replace(write_temporary(path, data), path)


def temporary_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``, for writers that stream into a file themselves (a memmap, torch.save);
    rename it with :func:`replace`."""
    remove_stale_temporaries(Path(path))
    return _temporary_name(Path(path))


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` whose writer is gone (this host, pid not running); returns them.

    A temporary of another host (a shared file system) or of a live process is left alone, as are names
    this module does not write.
    """
    removed = []
    for tmp in Path(path).parent.glob(f"{Path(path).name}.tmp-*"):
        fields = tmp.name[len(Path(path).name) + len(".tmp-"):].split("-")
        if len(fields) == 1 and fields[0].isdigit():  # the older form, name.tmp-<pid>
            host, pid = _HOST, int(fields[0])
        elif len(fields) == 3 and fields[1].isdigit():
            host, pid = fields[0], int(fields[1])
        else:
            continue
        if host != _HOST or process_alive(pid):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


class FolderBusy(RuntimeError):
    """Another live process holds the folder's lock; the message names it."""


def job_id() -> str | None:
    """The scheduler's job id of this process (SLURM, with its array index), if any."""
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


_HELD: dict[Path, int] = {}  # the folder locks this process holds, and how many times (re-entrant)


class FolderLock:
    """``<folder>/.lock``, held by one process at a time: use as ``with FolderLock(run): ...``.

    The lock file is created with ``O_EXCL``, so of two processes racing for it exactly one wins. It records
    pid, host, job id and start time. A lock left by a process of this host that is no longer running (a
    ``kill -9``, an OOM kill, a crash) is taken over; a lock of a live process, or of another host (which this
    one cannot check), is refused with :class:`FolderBusy`, saying who holds it and how to clear it.
    Re-entrant within a process: the trainer inside a sweep task takes the lock its task already holds.
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike, what: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.what = what
        self._key = self.path.resolve()

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:  # unreadable: a writer killed between creating and filling it, or just now filling it
            try:
                return time.time() - self.path.stat().st_mtime > 30
            except OSError:
                return True
        return holder.get("host") == socket.gethostname() and not process_alive(int(holder.get("pid", -1)))

    def acquire(self) -> "FolderLock":
        if self._key in _HELD:
            _HELD[self._key] += 1
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(), job_id=job_id(), started=time.strftime("%Y-%m-%dT%H:%M:%S"))
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if not self._stale(holder):
                    raise FolderBusy(self._busy_message(holder)) from None
                self._take_over(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            _HELD[self._key] = 1
            return self
        raise FolderBusy(f"could not take the lock {self.path}: other processes keep taking it")

    def _busy_message(self, holder: dict | None) -> str:
        who = "a process that is just starting"
        if holder:
            who = f"process {holder.get('pid')} on {holder.get('host')}" + (f" (job {holder['job_id']})" if holder.get("job_id") else "") \
                + f", since {holder.get('started')}"
        return (f"{self.folder} is in use by {who}: another {self.what} is writing there. Wait for it to end, or stop it; "
                f"if that process is gone (it ran on another machine, say), delete {self.path}.")

    def _take_over(self, holder: dict | None) -> None:
        """Move a stale lock aside, atomically; if what was moved is not the stale lock seen (another process took
        over first and holds a fresh one), put it back."""
        aside = self.path.with_name(f"{self.NAME}.stale-{_HOST}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except OSError:
            return
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = None
        if moved != holder:
            try:
                os.link(aside, self.path)  # fails if a newer lock is there already: then that one stands
            except OSError:
                pass
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        count = _HELD.get(self._key, 0)
        if count > 1:
            _HELD[self._key] = count - 1
            return
        if count == 1:
            del _HELD[self._key]
            holder = self.holder()
            if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                self.path.unlink(missing_ok=True)

    @property
    def held(self) -> bool:
        return self._key in _HELD

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
