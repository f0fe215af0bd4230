"""Evaluating a run folder: metrics.json, the decomposition over the whole dataset, figures, the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fvae_lib.config import TrainConfig
from fvae_lib.train import Trainer

REPO = Path(__file__).resolve().parent.parent


def smoke(**overrides):
    return TrainConfig.from_preset("smoke", **{"threads": 1, **overrides})


@pytest.mark.slow
def test_evaluate_writes_metrics_and_figures(tmp_path, small_replica):
    from fvae_lib.evaluate import evaluate_run

    Trainer(smoke(iterations=20), tmp_path / "r", data=small_replica, progress=False).run()
    result = evaluate_run(tmp_path / "r", settings="quick", metrics=("factor_vae", "mig"), data=small_replica)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["metrics"].keys() == {"factor_vae", "mig"} and 0 <= saved["metrics"]["factor_vae"]["eval_accuracy"] <= 1
    terms = saved["decomposition"]
    assert terms["num_points"] == len(small_replica)  # q(z) of the whole dataset, not a subsample
    assert abs(terms["mutual_info"] + terms["marginal_kl"] - terms["avg_kl"]) < 4 * terms["mc_error"] + 1e-6
    for name in ("reconstructions.png", "traversals.png", "training_curves.png", "latents_vs_factors.png", "kl_per_latent.png"):
        assert (tmp_path / "r" / name).read_bytes()[:4] == b"\x89PNG", name
    assert result["figures"]


@pytest.mark.slow
def test_evaluate_scores_the_same_from_the_encoded_grid(tmp_path, small_replica):
    from fvae_lib.evaluate import evaluate_run

    Trainer(smoke(iterations=20), tmp_path / "r", data=small_replica, progress=False).run()
    kw = dict(settings="quick", metrics=("factor_vae", "beta_vae", "mig"), data=small_replica, figures=False)
    grid = evaluate_run(tmp_path / "r", encode_grid=True, **kw)
    fly = evaluate_run(tmp_path / "r", encode_grid=False, **kw)
    assert grid["metrics_from"] == "encoded grid" and fly["metrics_from"] == "encoded on the fly"
    for name in kw["metrics"]:
        scores = {k: v for k, v in grid["metrics"][name].items() if k != "seconds"}
        assert scores == pytest.approx({k: v for k, v in fly["metrics"][name].items() if k != "seconds"}, abs=1e-9), name
    # the decomposition encodes the grid anyway, so by default the metrics take it
    assert evaluate_run(tmp_path / "r", **kw)["metrics_from"] == "encoded grid"
    # without the decomposition, quick settings still ask for more images than the small grid has
    assert evaluate_run(tmp_path / "r", decomposition=False, **kw)["metrics_from"] == "encoded grid"
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_run(tmp_path / "r", metrics=("sap",), data=small_replica, figures=False)


@pytest.mark.slow
def test_evaluate_mig_sampled_from_one_pass_of_posteriors(tmp_path, small_replica):
    from fvae_lib.evaluate import evaluate_run

    Trainer(smoke(iterations=20), tmp_path / "r", data=small_replica, progress=False).run()
    kw = dict(settings="quick", data=small_replica, figures=False)
    both = evaluate_run(tmp_path / "r", metrics=("mig", "mig_sampled"), **kw)
    assert 0 <= both["metrics"]["mig_sampled"]["mig"] <= 1 and both["metrics"]["mig_sampled"]["factor_indices"] == [1, 2, 3, 4]
    # the means taken from the posterior grid score exactly as a grid of means does
    alone = evaluate_run(tmp_path / "r", metrics=("mig",), encode_grid=True, **kw)
    assert both["metrics"]["mig"]["mig"] == alone["metrics"]["mig"]["mig"]
    proc = subprocess.run([sys.executable, "-m", "fvae_lib", "evaluate", str(tmp_path / "r"), "--metrics", "mig,sap"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "unknown ['sap']" in proc.stderr and "Traceback" not in proc.stderr
