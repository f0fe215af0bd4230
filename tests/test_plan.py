"""The training plan printed before a notebook trains."""
import pytest

from fvae_lib.config import TrainConfig
from fvae_lib.modes import run_mode
from fvae_lib.plan import training_plan, was_announced
from fvae_lib.train import Trainer


def test_the_plan_says_what_is_trained_resumed_or_reused_with_a_measured_estimate(runs, small_replica):
    mode = run_mode("smoke")
    specs = [("new", "betavae", {"beta": 4.0}), ("half", "factorvae", {"gamma": 10.0}), ("done", "betavae", {"beta": 1.0})]
    Trainer(TrainConfig.from_preset("smoke", model="factorvae", gamma=10.0, iterations=20), runs / "smoke" / "half",
            data=small_replica, progress=False).run()
    Trainer(TrainConfig.from_preset("smoke", model="betavae", beta=1.0), runs / "smoke" / "done",
            data=small_replica, progress=False).run()
    plan = training_plan(specs, mode, data=small_replica)
    new, half, done = plan
    assert (new.done, half.done, done.done) == (0, 20, 40)
    assert (new.remaining, half.remaining, done.remaining) == (40, 20, 0)
    assert new.it_per_s > 0 and new.gflop_per_it > 0 and new.seconds == pytest.approx(40 / new.it_per_s)
    assert done.seconds == 0 and plan.seconds == pytest.approx(new.seconds + half.seconds)
    text = str(plan)
    assert "trains 40 iterations" in text and "resumes at 20" in text and "reused" in text and "measured here" in text
    only_done = training_plan([specs[2]], mode, data=small_replica)
    assert "Nothing to train" in str(only_done)
    assert was_announced(runs / "smoke" / "new")
    training_plan([("quiet", "betavae", {"beta": 2.0})], mode, data=small_replica, announce=False)
    assert not was_announced(runs / "smoke" / "quiet")


def test_in_the_book_mode_the_plan_says_a_shipped_run_is_read_not_trained(runs, small_replica):
    from fvae_lib.modes import MODES

    plan = training_plan([("betavae_b16", "betavae", {"beta": 16.0}), ("factorvae_g35", "factorvae", {"gamma": 35.0})],
                         MODES["book"], data=small_replica, announce=False)
    assert [r.shipped for r in plan] == [5000, 5000] and plan.seconds == 0 and not any(r.it_per_s for r in plan)
    text = str(plan)
    assert text.count("read from reference/models (5,000 iterations): not trained here") == 2
    assert "trains" not in text and "Nothing to train" in text
    elsewhere = training_plan([("betavae_b16", "betavae", {"beta": 16.0})], MODES["smoke"], data=small_replica, announce=False)
    assert elsewhere[0].shipped is None and "trains 40 iterations" in str(elsewhere)
