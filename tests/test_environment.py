"""The setup cell's report and Colab's Drive."""
import pytest

from fvae_lib.environment import environment_report, in_colab, keep_runs_on_drive, runs_are_temporary
from fvae_lib.modes import MODES


def test_keep_runs_on_drive_is_for_colab_only():
    with pytest.raises(RuntimeError, match="for Colab"):
        keep_runs_on_drive()


def test_the_report_names_versions_device_mode_and_runs_folder(runs):
    report = environment_report(MODES["smoke"])
    assert {"python", "torch", "numpy", "matplotlib", "device"} <= set(report)
    assert report["mode"] == "smoke" and report["training preset"] == "smoke" and report["runs folder"] == str(runs)
    assert not in_colab() and not runs_are_temporary() and "note" not in report
