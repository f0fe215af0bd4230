"""Files that a crash or a kill never leaves half-written, and folders that never have two writers.

Writing: to a temporary file beside the target (named for this host, process and a random token, so no
two writers share one), synced, then renamed into place (``os.replace`` is atomic on POSIX and Windows),
then the folder synced so the rename itself survives a power cut. Checkpoints, dataset caches, results,
figures and notebooks all go through here. A temporary left by a writer that was killed is removed by the
next writer of the same file, never one of a writer still alive.

Locking: :class:`FolderLock` holds ``<folder>/.lock`` for as long as a process writes there: an exclusive
``flock`` that ends with its process however it ends, and a record (pid, host, job id, start time) that names
the holder to a second process, which is refused with a message saying who.
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


_HELD: dict[Path, list] = {}  # the folder locks this process holds: path -> [open file, times taken] (re-entrant)


def _slurm_job_active(job: str) -> bool | None:
    """Whether a SLURM job is still queued or running, from ``squeue``; None where that cannot be asked."""
    import subprocess

    try:
        done = subprocess.run(["squeue", "-h", "-j", job.split("_")[0], "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return False if "Invalid job id" in done.stderr else None
    return any(line.split()[0] == job for line in done.stdout.splitlines() if line.split()) or (
        "_" not in job and bool(done.stdout.strip()))


class FolderLock:
    """``<folder>/.lock``, held by one process at a time: use as ``with FolderLock(run): ...``.

    The hold is an exclusive ``flock`` on the lock file, which the kernel drops the moment its process ends,
    however it ends (``kill -9``, an OOM kill, a crash): no stale lock to clean up on this machine, and a reused
    pid can never look like a holder. The file also says who holds it (pid, host, job id, start time), for the
    message a second process gets (:class:`FolderBusy`) and for holders on other machines of a shared file
    system, where ``flock`` may not reach: a record naming another host is obeyed unless it is this process's
    own job (a requeued SLURM job on a new node) or SLURM says that job is no longer queued or running.
    Released, the file stays, emptied. Re-entrant within a process: the trainer inside a sweep task takes the
    lock its task already holds. Where ``fcntl`` is missing (Windows) only the record is written.
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike, what: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.what = what
        self._key = self.path.resolve()

    def holder(self) -> dict | None:
        """Who holds it, as the file records (None when it is free or the record is empty)."""
        try:
            text = self.path.read_text()
            return json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            return None

    def held_elsewhere(self) -> bool:
        """Whether another process of this machine holds it now (its flock), without taking it."""
        if self.held:
            return False
        try:
            f = open(self.path, "a+")
        except OSError:
            return False
        try:
            return not _try_flock(f)
        finally:
            f.close()  # closing drops a flock just taken

    def _obeyed_record(self, holder: dict | None) -> bool:
        """A record of a holder on another host, which this host's flock cannot see, that still stands."""
        if not holder or holder.get("host") == socket.gethostname():
            return False
        if holder.get("job_id") and holder.get("job_id") == job_id():
            return False  # this very job, requeued onto another node
        if holder.get("job_id"):
            return _slurm_job_active(str(holder["job_id"])) is not False
        return True

    def acquire(self) -> "FolderLock":
        if self._key in _HELD:
            _HELD[self._key][1] += 1
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            # a few tries over a second: another process may only be looking (held_elsewhere takes it for an instant)
            for attempt in range(20):
                if _try_flock(f):
                    break
                if attempt == 19:
                    raise FolderBusy(self._busy_message(self.holder()))
                time.sleep(0.05)
            holder = self.holder()
            if self._obeyed_record(holder):
                raise FolderBusy(self._busy_message(holder))
            me = dict(pid=os.getpid(), host=socket.gethostname(), job_id=job_id(), started=time.strftime("%Y-%m-%dT%H:%M:%S"))
            f.seek(0)
            f.truncate()
            f.write(json.dumps(me))
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()  # drops the flock, if taken
            raise
        _HELD[self._key] = [f, 1]
        return self

    def _busy_message(self, holder: dict | None) -> str:
        who = "another process"
        if holder:
            who = f"process {holder.get('pid')} on {holder.get('host')}" + (f" (job {holder['job_id']})" if holder.get("job_id") else "") \
                + f", since {holder.get('started')}"
        return (f"{self.folder} is in use by {who}: another {self.what} is writing there. Wait for it to end, or stop it; "
                f"if that process is gone (it ran on another machine, say), empty or delete {self.path}.")

    def release(self) -> None:
        entry = _HELD.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1]:
            return
        del _HELD[self._key]
        f = entry[0]
        try:
            f.seek(0)
            f.truncate()  # free: no record, so no other host obeys it
            f.flush()
        finally:
            f.close()  # and the flock goes with the file

    @property
    def held(self) -> bool:
        return self._key in _HELD

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_flock(f) -> bool:
    """Take an exclusive flock on an open file without waiting; False if another open file holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover -- Windows: no flock; the record alone
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
