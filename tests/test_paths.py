"""Where the folders are: the environment variable, else the checkout's own folder, else the fallback."""
from pathlib import Path

from fvae_lib import paths
from fvae_lib.paths import configured_folder

REPO = Path(__file__).resolve().parent.parent


def test_the_environment_variable_wins_and_a_tilde_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("FVAE_RUNS_DIR", str(tmp_path / "mine"))
    assert configured_folder("FVAE_RUNS_DIR", "runs", Path("/fallback")) == tmp_path / "mine"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FVAE_RUNS_DIR", "~/elsewhere")
    assert configured_folder("FVAE_RUNS_DIR", "runs", Path("/fallback")) == tmp_path / "elsewhere"


def test_without_it_a_checkout_uses_its_own_folder_and_an_installed_package_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("FVAE_RUNS_DIR", "")  # set but empty: as if unset
    assert paths.in_checkout() and paths.CHECKOUT == REPO  # these tests run from the source checkout
    assert configured_folder("FVAE_RUNS_DIR", "runs", tmp_path) == REPO / "runs"
    assert configured_folder("FVAE_RUNS_DIR", "tests", tmp_path, existing=True) == REPO / "tests"
    assert configured_folder("FVAE_RUNS_DIR", "no-such-folder", tmp_path, existing=True) == tmp_path
    monkeypatch.setattr(paths, "in_checkout", lambda: False)  # an installed wheel: no checkout to hold the folder
    assert configured_folder("FVAE_RUNS_DIR", "runs", tmp_path) == tmp_path
