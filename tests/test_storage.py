"""Atomic writes (unique temporaries, stale ones of dead writers removed) and the one-writer folder lock (flock)."""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fvae_lib.storage import FolderBusy, FolderLock, atomic_write_bytes, remove_stale_temporaries, write_temporary

REPO = Path(__file__).resolve().parent.parent


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper():
    """A live process of this host that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_every_temporary_has_its_own_name_and_the_target_is_whole(tmp_path):
    target = tmp_path / "results.csv"
    names = {write_temporary(target, b"x").name for _ in range(5)}
    assert len(names) == 5 and all(str(os.getpid()) in n for n in names)  # unique within one process too
    atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"


def test_temporaries_of_dead_writers_are_removed_and_those_of_live_ones_kept(tmp_path, sleeper):
    target = tmp_path / "checkpoint.pt"
    host = socket.gethostname().replace("-", "_")
    dead = [tmp_path / f"checkpoint.pt.tmp-{host}-{dead_pid()}-abcd", tmp_path / f"checkpoint.pt.tmp-{dead_pid()}"]
    live = [tmp_path / f"checkpoint.pt.tmp-{host}-{sleeper}-abcd", tmp_path / f"checkpoint.pt.tmp-otherhost-{dead_pid()}-abcd",
            tmp_path / "checkpoint.pt.tmp-notours"]
    for path in dead + live:
        path.write_bytes(b"half")
    assert sorted(remove_stale_temporaries(target)) == sorted(dead)
    assert all(p.exists() for p in live) and not any(p.exists() for p in dead)
    dead[0].write_bytes(b"half")
    atomic_write_bytes(target, b"new")  # every write clears what killed writers left
    assert not dead[0].exists() and target.read_bytes() == b"new"


def test_the_lock_records_its_holder_and_is_emptied_on_release(tmp_path):
    with FolderLock(tmp_path / "run") as lock:
        holder = json.loads((tmp_path / "run" / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and lock.held
        with FolderLock(tmp_path / "run"):  # re-entrant in one process
            pass
        assert lock.held and lock.holder()["pid"] == os.getpid()
    assert not lock.held and lock.holder() is None


def test_a_lock_held_by_a_live_process_is_refused_naming_it(tmp_path, holder, hold_script):
    proc = holder(tmp_path)
    assert FolderLock(tmp_path).held_elsewhere()
    with pytest.raises(FolderBusy, match=rf"in use by process {proc.pid} on .*empty or delete .*\.lock"):
        FolderLock(tmp_path).acquire()
    busy = subprocess.run([sys.executable, "-c", hold_script, str(tmp_path)], input="\n", capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert busy.stdout.startswith("busy") and str(proc.pid) in busy.stdout
    proc.communicate("\n", timeout=120)  # released: free for the next one
    assert not FolderLock(tmp_path).held_elsewhere()
    with FolderLock(tmp_path):
        pass


def test_a_killed_holder_leaves_nothing_to_clean_up(tmp_path, holder):
    proc = holder(tmp_path)
    proc.send_signal(signal.SIGKILL)  # as an OOM kill: no chance to release anything
    proc.wait()
    assert FolderLock(tmp_path).holder()["pid"] == proc.pid  # its record is still there...
    with FolderLock(tmp_path):  # ...but the kernel dropped its flock: taken at once
        assert FolderLock(tmp_path).holder()["pid"] == os.getpid()


def test_a_record_of_a_dead_process_of_this_host_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps(dict(pid=dead_pid(), host=socket.gethostname(), job_id=None, started="then")))
    with FolderLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_a_holder_on_another_host_is_obeyed_unless_it_is_this_same_job(tmp_path, monkeypatch):
    """flock may not reach across a shared file system: a record naming another host stands, but a requeued SLURM
    job (the same job id, on a new node) takes its own lock back."""
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-squeue-here"))  # SLURM cannot be asked: the record stands
    (tmp_path / ".lock").write_text(json.dumps(dict(pid=12345, host="node-7", job_id="901", started="then")))
    monkeypatch.setenv("SLURM_JOB_ID", "555")
    with pytest.raises(FolderBusy, match=r"process 12345 on node-7 \(job 901\)"):
        FolderLock(tmp_path).acquire()
    (tmp_path / ".lock").write_text(json.dumps(dict(pid=12345, host="node-7", job_id=None, started="then")))
    with pytest.raises(FolderBusy, match="node-7"):
        FolderLock(tmp_path).acquire()
    (tmp_path / ".lock").write_text(json.dumps(dict(pid=12345, host="node-7", job_id="555", started="then")))
    with FolderLock(tmp_path):  # this job, requeued
        assert FolderLock(tmp_path).holder()["host"] == socket.gethostname()


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    """Without an fsync of the folder, a power cut after os.replace can lose the rename itself."""
    import stat

    import fvae_lib.storage as storage

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    atomic_write_bytes(tmp_path / "results.csv", b"x")
    assert synced == [False, True]  # the file's data, then the folder holding the new name
