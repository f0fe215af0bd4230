"""Test-session settings shared by the library tests (tests/) and the notebooks (notebooks/, via nbval).

Notebooks run in smoke mode, and their runs go to a fresh temporary folder so a test never reuses (or
clobbers) a learner's runs in runs/. The notebook kernels inherit this environment.
"""
import os
import tempfile

os.environ["FVAE_MODE"] = "smoke"
os.environ.setdefault("FVAE_RUNS_DIR", tempfile.mkdtemp(prefix="fvae-test-runs-"))
os.environ.setdefault("MPLBACKEND", "Agg")
