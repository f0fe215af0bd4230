"""What a notebook asks for: load-or-train, the model a figure shows, notebook 07's sweep."""
import pytest
import torch

from fvae_lib.modes import MODES, run_mode
from fvae_lib.notebook import load_or_train, model_to_show, sweep_command, sweep_spec
from fvae_lib.plan import training_plan


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_load_or_train_prints_a_plan_unless_one_announced_the_run(runs, small_replica, capsys):
    mode = run_mode("smoke")
    load_or_train("b16", mode, model="betavae", beta=16.0, progress=False, data=small_replica)
    assert "Training plan" in capsys.readouterr().out
    training_plan([("b8", "betavae", {"beta": 8.0})], mode, data=small_replica)
    load_or_train("b8", mode, model="betavae", beta=8.0, progress=False, data=small_replica)
    assert "Training plan" not in capsys.readouterr().out


def test_load_or_train_reuses_a_finished_run(runs, small_replica):
    mode = run_mode("smoke")
    vae, config, history = load_or_train("b4", mode, model="betavae", beta=4.0, progress=False, data=small_replica)
    stamp = (runs / "smoke" / "b4" / "checkpoint.pt").stat().st_mtime_ns
    again, _, history2 = load_or_train("b4", mode, model="betavae", beta=4.0, progress=False, data=small_replica)
    assert (runs / "smoke" / "b4" / "checkpoint.pt").stat().st_mtime_ns == stamp, "a finished run is not retrained"
    assert history == history2 and _same(vae.state_dict(), again.state_dict())
    with pytest.raises(ValueError, match="other settings"):
        load_or_train("b4", mode, model="betavae", beta=8.0, progress=False, data=small_replica)


def test_notebook_07s_sweep_uses_the_run_names_and_folder_of_the_other_notebooks(runs):
    for name in ("smoke", "cpu", "gpu", "paper"):
        mode = MODES[name]
        spec = sweep_spec(mode)
        names = {t["name"] for t in spec.tasks(spec.out)}
        assert spec.out == str(runs / name) and spec.preset == mode.preset
        assert {f"betavae_b{b:g}" for b in mode.sweep_betas} <= names  # seed 0: the names 01, 02 and 05 write
        assert len(names) == (len(mode.sweep_betas) + len(mode.sweep_gammas)) * len(mode.sweep_seeds)
    assert {"betavae_b4", "factorvae_g35"} <= {t["name"] for t in sweep_spec(MODES["cpu"]).tasks()}
    command = sweep_command(MODES["smoke"])
    assert command.startswith("python -m fvae_lib sweep --betavae 1,16 --factorvae 10,100 --seeds 0 --preset smoke")


def test_smoke_mode_shows_a_reference_model_and_trained_modes_their_own(capsys):
    own = object()
    assert model_to_show("factorvae_g35", MODES["cpu"], own) is own
    shown = model_to_show("factorvae_g35", MODES["smoke"], own)
    assert shown is not own and "reference model factorvae_g35" in capsys.readouterr().out
    assert model_to_show("factorvae_g99", MODES["smoke"], own) is own


def test_load_or_train_trains_with_a_step_of_ones_own(runs, small_replica):
    from fvae_lib.algorithm import beta_vae_step

    calls = []

    def my_step(*args):
        calls.append(1)
        return beta_vae_step(*args)

    mode = run_mode("smoke")
    _, config, history = load_or_train("mine", mode, model="betavae", beta=4.0, progress=False, data=small_replica, step=my_step)
    assert len(calls) == config.iterations and history[-1]["step"] == config.iterations
