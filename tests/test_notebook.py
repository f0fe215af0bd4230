"""What every notebook shares: run modes, the training plan, load-or-train, Colab's Drive."""
import pytest
import torch

from fvae_lib import notebook
from fvae_lib.config import TrainConfig
from fvae_lib.train import Trainer


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("FVAE_RUNS_DIR", str(tmp_path))
    return tmp_path


def test_default_mode_is_minutes_on_every_device_and_paper_only_by_name(monkeypatch):
    monkeypatch.delenv("FVAE_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert notebook.run_mode().name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.run_mode().name == "gpu" and notebook.run_mode().preset == "gpu"
    assert notebook.run_mode("paper").name == "paper"
    monkeypatch.setenv("FVAE_MODE", "smoke")
    assert notebook.run_mode("paper").name == "smoke"  # the environment wins (tests, CI)
    monkeypatch.setenv("FVAE_MODE", "huge")
    with pytest.raises(ValueError, match="unknown run mode"):
        notebook.run_mode()


def test_the_plan_says_what_is_trained_resumed_or_reused_with_a_measured_estimate(runs, small_replica):
    mode = notebook.run_mode("smoke")
    specs = [("new", "betavae", {"beta": 4.0}), ("half", "factorvae", {"gamma": 10.0}), ("done", "betavae", {"beta": 1.0})]
    Trainer(TrainConfig.from_preset("smoke", model="factorvae", gamma=10.0, iterations=20), runs / "smoke" / "half",
            data=small_replica, progress=False).run()
    Trainer(TrainConfig.from_preset("smoke", model="betavae", beta=1.0), runs / "smoke" / "done",
            data=small_replica, progress=False).run()
    plan = notebook.training_plan(specs, mode, data=small_replica)
    new, half, done = plan
    assert (new.done, half.done, done.done) == (0, 20, 40)
    assert (new.remaining, half.remaining, done.remaining) == (40, 20, 0)
    assert new.it_per_s > 0 and new.gflop_per_it > 0 and new.seconds == pytest.approx(40 / new.it_per_s)
    assert done.seconds == 0 and plan.seconds == pytest.approx(new.seconds + half.seconds)
    text = str(plan)
    assert "trains 40 iterations" in text and "resumes at 20" in text and "reused" in text and "measured here" in text
    only_done = notebook.training_plan([specs[2]], mode, data=small_replica)
    assert "Nothing to train" in str(only_done)


def test_load_or_train_prints_a_plan_unless_one_announced_the_run(runs, small_replica, capsys):
    mode = notebook.run_mode("smoke")
    notebook.load_or_train("b16", mode, model="betavae", beta=16.0, progress=False, data=small_replica)
    assert "Training plan" in capsys.readouterr().out
    notebook.training_plan([("b8", "betavae", {"beta": 8.0})], mode, data=small_replica)
    notebook.load_or_train("b8", mode, model="betavae", beta=8.0, progress=False, data=small_replica)
    assert "Training plan" not in capsys.readouterr().out


def test_keep_runs_on_drive_is_for_colab_only():
    with pytest.raises(RuntimeError, match="for Colab"):
        notebook.keep_runs_on_drive()


def test_load_or_train_reuses_a_finished_run(runs, small_replica):
    mode = notebook.run_mode("smoke")
    vae, config, history = notebook.load_or_train("b4", mode, model="betavae", beta=4.0, progress=False, data=small_replica)
    stamp = (runs / "smoke" / "b4" / "checkpoint.pt").stat().st_mtime_ns
    again, _, history2 = notebook.load_or_train("b4", mode, model="betavae", beta=4.0, progress=False, data=small_replica)
    assert (runs / "smoke" / "b4" / "checkpoint.pt").stat().st_mtime_ns == stamp, "a finished run is not retrained"
    assert history == history2 and _same(vae.state_dict(), again.state_dict())
    with pytest.raises(ValueError, match="other settings"):
        notebook.load_or_train("b4", mode, model="betavae", beta=8.0, progress=False, data=small_replica)


def test_notebook_07s_sweep_uses_the_run_names_and_folder_of_the_other_notebooks(runs):
    for name in ("smoke", "cpu", "gpu", "paper"):
        mode = notebook.MODES[name]
        spec = notebook.sweep_spec(mode)
        names = {t["name"] for t in spec.tasks(spec.out)}
        assert spec.out == str(runs / name) and spec.preset == mode.preset
        assert {f"betavae_b{b:g}" for b in mode.sweep_betas} <= names  # seed 0: the names 01, 02 and 05 write
        assert len(names) == (len(mode.sweep_betas) + len(mode.sweep_gammas)) * len(mode.sweep_seeds)
    assert {"betavae_b4", "factorvae_g35"} <= {t["name"] for t in notebook.sweep_spec(notebook.MODES["cpu"]).tasks()}
    command = notebook.sweep_command(notebook.MODES["smoke"])
    assert command.startswith("python -m fvae_lib sweep --betavae 1,16 --factorvae 10,100 --seeds 0 --preset smoke")


def test_smoke_mode_shows_a_reference_model_and_trained_modes_their_own(capsys):
    own = object()
    assert notebook.model_to_show("factorvae_g35", notebook.MODES["cpu"], own) is own
    shown = notebook.model_to_show("factorvae_g35", notebook.MODES["smoke"], own)
    assert shown is not own and "reference model factorvae_g35" in capsys.readouterr().out
    assert notebook.model_to_show("factorvae_g99", notebook.MODES["smoke"], own) is own
