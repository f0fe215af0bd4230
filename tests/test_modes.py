"""The run modes: which one is in force, and where a mode's runs go."""
import pytest
import torch

from fvae_lib.modes import MODES, run_folder, run_mode


def test_default_mode_is_minutes_on_every_device_and_paper_only_by_name(monkeypatch):
    monkeypatch.delenv("FVAE_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_mode().name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert run_mode().name == "gpu" and run_mode().preset == "gpu"
    assert run_mode("paper").name == "paper"
    monkeypatch.setenv("FVAE_MODE", "smoke")
    assert run_mode("paper").name == "smoke"  # the environment wins (tests, CI)
    monkeypatch.setenv("FVAE_MODE", "huge")
    with pytest.raises(ValueError, match="unknown run mode"):
        run_mode()


def test_a_modes_runs_live_under_the_configured_runs_folder(runs):
    assert run_folder("b4", MODES["cpu"]) == runs / "cpu" / "b4"
    assert set(MODES) == {"smoke", "cpu", "gpu", "paper", "book"} and all(m.name == k for k, m in MODES.items())
