"""The command line: bad input of every command refused with a message, an exit code of 2 and no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from fvae_lib.config import TrainConfig
from fvae_lib.train import Trainer

REPO = Path(__file__).resolve().parent.parent


def smoke(**overrides):
    return TrainConfig.from_preset("smoke", **{"threads": 1, **overrides})


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fvae_lib", "data", "--source", "real", "--path", str(tmp_path / "nope.npz")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nope.npz" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_bad_configs_with_a_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fvae_lib", "train", "--preset", "smoke", "--gamma", "-3",
                           "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "gamma must be" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_cli_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fvae_lib", "evaluate", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "not a run folder" in proc.stderr and "Traceback" not in proc.stderr

def test_cli_book_says_what_is_wrong_in_one_line(tmp_path):
    def book(*args):
        return subprocess.run([sys.executable, "-m", "fvae_lib", "book", *args], capture_output=True, text=True, cwd=REPO)

    proc = book("--serve-only", "--out", str(tmp_path))
    assert proc.returncode == 2 and "no book in" in proc.stderr and "make book" in proc.stderr and "Traceback" not in proc.stderr
    proc = book("--notebooks", "42", "--out", str(tmp_path))
    assert proc.returncode == 2 and "no notebook 42" in proc.stderr and "Traceback" not in proc.stderr
    proc = book("--mode", "huge", "--out", str(tmp_path))
    assert proc.returncode == 2 and "unknown run mode 'huge'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_cli_evaluate_on_a_missing_gpu_says_so_in_one_line(tmp_path, small_replica):
    Trainer(smoke(iterations=10, log_every=10, checkpoint_every=10), tmp_path / "r", data=small_replica, progress=False).run()
    proc = subprocess.run([sys.executable, "-m", "fvae_lib", "evaluate", str(tmp_path / "r"), "--device", "cuda"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "no GPU" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
