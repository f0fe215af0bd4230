"""The shipped reference sweep and publishing a sweep: complete, labelled, never overwritten by accident."""
import pytest
import torch

from fvae_lib.config import ConfigError
from fvae_lib.engines import run_sweep
from fvae_lib.reference import load_reference_model, read_results, read_trajectories, reference_dir
from fvae_lib.runs import load_model
from fvae_lib.sweep import SweepSpec

@pytest.mark.slow
def test_publish_writes_small_files_and_fp16_models_that_load(tmp_path):
    out = tmp_path / "sweep"
    spec = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke", "settings": "quick",
                                "publish": {"folder": str(tmp_path / "pub"), "models": ["betavae_b4"]}})
    run_sweep(spec, out, workers=1, threads=1, progress=False, poll_s=0.2)
    pub = tmp_path / "pub"
    assert sorted(p.name for p in (pub / "runs" / "betavae_b4").iterdir()) == ["config.json", "history.jsonl", "metrics.json", "trajectory.json"]
    assert read_results(pub)[0]["name"] == "betavae_b4"
    small, config = load_reference_model("betavae_b4", folder=pub)
    full, _ = load_model(out / "betavae_b4")
    assert config.beta == 4.0
    for (name, a), b in zip(full.state_dict().items(), small.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name  # fp16 rounding only
    with pytest.raises(ConfigError, match="shipped ones are"):
        load_reference_model("betavae_b99", folder=pub)


def test_reference_dir_says_where_the_results_are(tmp_path, monkeypatch):
    monkeypatch.setenv("FVAE_REFERENCE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="reference/ folder"):
        reference_dir()


def test_the_shipped_reference_sweep_is_complete_and_labelled_with_its_scale():
    rows = read_results()
    assert len(rows) == 12 and all(r["status"] == "finished" and r["iterations"] == 5000 for r in rows)
    spec = SweepSpec.from_file(reference_dir() / "sweep.toml")
    assert {r["name"] for r in rows} == {t["name"] for t in spec.tasks()}
    for r in rows:  # every run's small files are in git, not only the table
        assert sorted(p.name for p in (reference_dir() / "runs" / r["name"]).iterdir()) == \
            ["config.json", "history.jsonl", "metrics.json", "trajectory.json"], r["name"]
    trajectories = read_trajectories()
    assert {p["name"] for p in trajectories} == {r["name"] for r in rows}
    # the runs the spec decomposes along training (notebook 05 plots them) have every term at every snapshot,
    # and the last snapshot, the final model, agrees with the table's decomposition within Monte Carlo error
    decomposed = {t["name"] for t in spec.tasks() if t["trajectory_decomposition"]}
    assert decomposed == {"betavae_b1", "betavae_b4", "factorvae_g10", "factorvae_g35"}
    table = {r["name"]: r for r in rows}
    for name in decomposed:
        points = sorted((p for p in trajectories if p["name"] == name), key=lambda p: p["step"])
        assert [p["step"] for p in points] == [1000, 2000, 3000, 4000, 5000]
        assert all(p[k] is not None for p in points for k in ("mutual_info", "total_correlation", "dimwise_kl", "tc_error"))
        last, final = points[-1], table[name]
        error = 2 * (last["tc_error"] ** 2 + final["decomposition.tc_error"] ** 2) ** 0.5
        assert abs(last["total_correlation"] - final["decomposition.total_correlation"]) < 2 * error + 0.05, name
    assert all(p["total_correlation"] is None for p in trajectories if p["name"] not in decomposed)
    for name in spec.publish["models"]:
        vae, config = load_reference_model(name)
        assert config.iterations == 5000 and not any(torch.isnan(p).any() for p in vae.parameters())


def test_the_shipped_table_flags_the_one_unstable_reference_run():
    from fvae_lib.reference import reference_history
    from fvae_lib.sweep_table import final_spike

    rows = read_results()
    assert [r["name"] for r in rows if r["unstable"]] == ["factorvae_g35_s1"]
    for row in rows:  # the column is what the shipped history gives
        assert final_spike(reference_history(row["name"]))["final_spike"] == pytest.approx(row["final_spike"])


def test_the_reference_spec_pins_what_auto_would_leave_to_the_machine():
    spec = SweepSpec.from_file(reference_dir() / "sweep.toml")
    assert (spec.data_source, spec.device, spec.precision, spec.threads) == ("replica", "cpu", "bf16", 1)
    assert all(t["config"]["threads"] == 1 and t["config"]["precision"] == "bf16" for t in spec.tasks(threads=1))


def test_publish_refuses_an_incomplete_sweep_and_keeps_published_results(tmp_path):
    from fvae_lib.reference import AlreadyPublished, publish

    spec = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke", "publish": {"folder": str(tmp_path / "pub")}})
    with pytest.raises(ConfigError, match="not finished: betavae_b4"):
        publish(tmp_path / "sweep", spec, [{"name": "betavae_b4", "status": "failed"}])
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "results.csv").write_text("shipped\n")
    with pytest.raises(AlreadyPublished, match="--overwrite-published"):
        publish(tmp_path / "sweep", spec, [{"name": "betavae_b4", "status": "finished"}])
    assert (tmp_path / "pub" / "results.csv").read_text() == "shipped\n"
