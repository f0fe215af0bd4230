"""A sweep's table summarised: finished runs grouped by model and β or γ, their spread, and the trade-off."""
import math

import pytest

from fvae_lib.results import label, pareto_front, setting_label, summarise

COLUMNS = ["final_recon", "factor_vae.eval_accuracy"]


def row(model, value, seed, recon, score, status="finished"):
    return {"name": f"{model}_{value:g}_s{seed}", "model": model, "value": value, "seed": seed, "status": status,
            "hyperparameter": "beta" if model == "betavae" else "gamma", "final_recon": recon,
            "factor_vae.eval_accuracy": score}


ROWS = [
    row("factorvae", 35.0, 0, 30.0, 0.875),
    row("betavae", 16.0, 0, 40.0, 0.625),
    row("betavae", 4.0, 1, 24.0, 0.5),
    row("betavae", 4.0, 0, 20.0, 0.75),
    row("betavae", 1.0, 0, 10.0, 0.25, status="failed"),  # a failed run is no result
]


def test_summarise_groups_finished_runs_betavae_first_by_value_with_their_spread():
    groups = summarise(ROWS, COLUMNS)
    assert [(g["model"], g["value"]) for g in groups] == [("betavae", 4.0), ("betavae", 16.0), ("factorvae", 35.0)]
    b4 = groups[0]
    assert b4["seeds"] == [0, 1] and b4["hyperparameter"] == "beta"
    assert b4["final_recon"] == dict(mean=22.0, sd=pytest.approx(math.sqrt(8)), min=20.0, max=24.0, values=[24.0, 20.0])
    assert b4["factor_vae.eval_accuracy"]["mean"] == 0.625
    assert groups[1]["final_recon"]["sd"] == 0.0  # one seed: no spread
    missing = summarise([dict(ROWS[0], final_recon=None)], COLUMNS)[0]["final_recon"]
    assert math.isnan(missing["mean"])  # a missing value is not a zero


def test_the_pareto_front_keeps_the_groups_no_other_beats_on_both_and_labels_name_the_setting():
    groups = summarise(ROWS, COLUMNS)
    front = pareto_front(groups, "final_recon", "factor_vae.eval_accuracy")
    # β=16 has β=4's score at a higher error: beaten; β=4 has the lowest error, γ=35 the highest score
    assert [label(g) for g in front] == ["β=4", "γ=35"]
    assert setting_label("betavae", 0.5) == "β=0.5" and setting_label("factorvae", 100.0) == "γ=100"
