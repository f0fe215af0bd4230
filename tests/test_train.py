"""The trainer: Algorithm 2's gradient flow, learning, exact resume, kills during saves, refusals."""
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fvae_lib.config import ConfigError, TrainConfig
from fvae_lib.runs import RunFolder, read_history
from fvae_lib.train import Trainer, TrainingDiverged


def load_checkpoint(run):
    return RunFolder(run).load_checkpoint()

REPO = Path(__file__).resolve().parent.parent


def smoke(**overrides):
    # one pinned thread: the resume tests compare runs bit for bit, and a thread count that adapts to the
    # machine's load (the default, fvae_lib.threads) may change fp32 sums' last bits between runs
    return TrainConfig.from_preset("smoke", **{"threads": 1, **overrides})


@pytest.fixture
def trainer(tmp_path, small_replica):
    return Trainer(smoke(), tmp_path / "run", data=small_replica, progress=False)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- Algorithm 2's gradient flow


def test_vae_step_leaves_the_discriminator_unchanged_and_d_step_reaches_no_vae_weight(trainer):
    d_before = _snapshot(trainer.disc)
    seen = {}

    def after_vae_update(opt, args, kwargs):
        seen["d_after_vae_step"] = _snapshot(trainer.disc)
        seen["vae_grads"] = [p.grad.clone() for p in trainer.vae.parameters()]
        seen["vae_params"] = _snapshot(trainer.vae)

    handle = trainer.opt_vae.register_step_post_hook(after_vae_update)
    trainer.train_step()
    handle.remove()
    # the VAE update did not move D by a single bit...
    assert _same(d_before, seen["d_after_vae_step"])
    # ...the D update that followed did move it...
    assert not _same(d_before, _snapshot(trainer.disc))
    # ...and D's loss put exactly zero gradient on the encoder and decoder: their .grad is what the
    # VAE loss left, and their weights are what the VAE update made them
    assert all(torch.equal(g, p.grad) for g, p in zip(seen["vae_grads"], trainer.vae.parameters()))
    assert _same(seen["vae_params"], _snapshot(trainer.vae))


def test_vae_optimiser_holds_encoder_and_decoder_only(trainer):
    vae_ids = {id(p) for g in trainer.opt_vae.param_groups for p in g["params"]}
    d_ids = {id(p) for g in trainer.opt_d.param_groups for p in g["params"]}
    assert vae_ids == {id(p) for p in trainer.vae.parameters()}
    assert d_ids == {id(p) for p in trainer.disc.parameters()} and not vae_ids & d_ids
    assert trainer.opt_vae.param_groups[0]["betas"] == (0.9, 0.999) and trainer.opt_d.param_groups[0]["betas"] == (0.5, 0.9)
    assert trainer.opt_vae.param_groups[0]["lr"] == trainer.opt_d.param_groups[0]["lr"] == 1e-4


def test_the_tc_term_trains_the_encoder_through_d(trainer):
    """γ·TC reaches the encoder: with γ = 0 the VAE gradients differ."""
    grads = {}
    for gamma in (0.0, 50.0):
        trainer.config.gamma = gamma
        state, noise = trainer.sampler.state_dict(), trainer.noise.get_state()
        hook = trainer.opt_vae.register_step_post_hook(
            lambda o, a, k, gamma=gamma: grads.__setitem__(gamma, [p.grad.clone() for p in trainer.vae.encoder.parameters()]))
        vae = _snapshot(trainer.vae)
        trainer.train_step()
        hook.remove()
        trainer.vae.load_state_dict(vae)
        trainer.sampler.load_state_dict(state), trainer.noise.set_state(noise)
    assert any(not torch.equal(a, b) for a, b in zip(grads[0.0], grads[50.0]))


# ---------------------------------------------------------------- learning


@pytest.mark.parametrize("model", ["factorvae", "betavae"])
def test_a_short_run_lowers_the_loss(tmp_path, small_replica, model):
    cfg = TrainConfig.from_preset("smoke", model=model)
    rows = Trainer(cfg, tmp_path / model, data=small_replica, progress=False).run()
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert rows[-1]["recon"] < rows[0]["recon"] - 50
    assert len(rows[0]["kl_dims"]) == cfg.z_dim and all(math.isfinite(r["loss"]) for r in rows)
    assert read_history(tmp_path / model) == rows
    if model == "factorvae":
        assert 0 <= rows[-1]["d_acc"] <= 1 and abs(rows[-1]["d_loss"] - math.log(2)) < 0.2


# ---------------------------------------------------------------- resume, bit for bit


@pytest.mark.slow
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, small_replica):
    full = Trainer(smoke(), tmp_path / "full", data=small_replica, progress=False)
    full.run()
    first = Trainer(smoke(iterations=20), tmp_path / "split", data=small_replica, progress=False)
    first.run()
    del first  # as if the process had ended
    second = Trainer(smoke(), tmp_path / "split", resume=True, data=small_replica, progress=False)
    assert second.step == 20
    second.run()
    a, b = full.state_dict(), second.state_dict()
    for key in ("vae", "disc"):
        assert _same(a[key], b[key]), key
    for key in ("opt_vae", "opt_d"):
        for pa, pb in zip(a[key]["state"].values(), b[key]["state"].values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("it_per_s", "elapsed_s")} for r in rows]
    assert strip(read_history(tmp_path / "full")) == strip(read_history(tmp_path / "split"))


def test_resume_drops_history_logged_after_the_checkpoint(tmp_path, small_replica):
    run = tmp_path / "r"
    Trainer(smoke(iterations=20), run, data=small_replica, progress=False).run()
    with open(run / "history.jsonl", "a") as f:  # rows a killed process logged after its last save
        f.write(json.dumps({"step": 30, "recon": 1.0}) + "\n" + '{"step": 40, "rec')
    t = Trainer(smoke(iterations=20), run, resume=True, data=small_replica, progress=False)
    assert [r["step"] for r in read_history(run)] == [10, 20] and t.step == 20


KILL_SCRIPT = """
import sys
from fvae_lib.config import TrainConfig
from fvae_lib.train import Trainer
cfg = TrainConfig.from_preset("smoke", iterations=int(sys.argv[2]), log_every=1, checkpoint_every=1, threads=1)
Trainer(cfg, sys.argv[1], resume=len(sys.argv) > 3, progress=False).run()
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.4])
def test_kill_during_checkpointing_leaves_a_run_that_resumes_exactly(tmp_path, small_replica, delay):
    """Saving every step, most of the time is spent inside a save: a SIGKILL lands there."""
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(run), "25"], cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoint.pt").exists():
        time.sleep(0.01)
    time.sleep(delay)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(run)  # loads: the newest whole checkpoint
    assert 1 <= state["step"] < 25
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(run), "25", "resume"], cwd=REPO, check=True)
    reference = Trainer(smoke(iterations=25, log_every=1, checkpoint_every=25), tmp_path / "ref", data=small_replica, progress=False)
    reference.run()
    resumed = load_checkpoint(run)
    assert resumed["step"] == 25
    assert _same(reference.state_dict()["vae"], resumed["vae"]) and _same(reference.state_dict()["disc"], resumed["disc"])


# ---------------------------------------------------------------- NaN stops the run


def test_nan_stops_the_run_naming_step_and_term_and_keeps_the_last_good_checkpoint(tmp_path, small_replica):
    t = Trainer(smoke(iterations=30, checkpoint_every=10), tmp_path / "r", data=small_replica, progress=False)
    t.vae.decoder.register_forward_hook(lambda m, i, out: out * float("nan") if t.step == 14 else out)
    with pytest.raises(TrainingDiverged, match=r"recon term became nan at step 15.*checkpoint"):
        t.run()
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["vae"].values())


# ---------------------------------------------------------------- refusals, before any work


def test_an_out_folder_holding_another_run_is_refused_without_resume(tmp_path, small_replica):
    run = tmp_path / "r"
    Trainer(smoke(iterations=10), run, data=small_replica, progress=False).run()
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a factorvae run.*--resume"):
        Trainer(smoke(gamma=10.0), run, data=small_replica, progress=False)
    with pytest.raises(ConfigError, match="differ.*gamma"):
        Trainer(smoke(gamma=10.0), run, resume=True, data=small_replica, progress=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        Trainer(smoke(), tmp_path / "empty", resume=True, data=small_replica, progress=False)
    assert (run / "checkpoint.pt").read_bytes() == before


# ---------------------------------------------------------------- a folder in use, a refused config, another device


def test_a_second_trainer_on_a_run_folder_in_use_is_refused_and_writes_nothing(tmp_path, small_replica, holder):
    """A run still being written by another live process (an orphaned sweep worker) is never written twice."""
    from fvae_lib.storage import FolderBusy

    run = tmp_path / "r"
    Trainer(smoke(iterations=20), run, data=small_replica, progress=False).run()
    with open(run / "history.jsonl", "a") as f:  # the other writer is ahead of the checkpoint
        f.write(json.dumps({"step": 30, "recon": 1.0}) + "\n")
    history = (run / "history.jsonl").read_bytes()
    other = holder(run)
    try:
        with pytest.raises(FolderBusy, match=f"process {other.pid}"):
            Trainer(smoke(iterations=40), run, resume=True, data=small_replica, progress=False)
        assert (run / "history.jsonl").read_bytes() == history  # not truncated under the other writer
    finally:
        other.kill()  # killed: its lock goes with it
        other.wait()
    t = Trainer(smoke(iterations=40), run, resume=True, data=small_replica, progress=False)
    t.run()
    assert [r["step"] for r in read_history(run)] == [10, 20, 30, 40]
    assert not t.lock.held and t.lock.holder() is None  # let go at the end of run()


def test_a_refused_config_leaves_no_folder_behind(tmp_path, small_replica):
    with pytest.raises(ConfigError, match="nothing to resume"):
        Trainer(smoke(), tmp_path / "new", resume=True, data=small_replica, progress=False)
    assert not (tmp_path / "new").exists()


def test_a_checkpoint_from_another_device_type_resumes_with_fresh_generators_and_says_so(tmp_path, small_replica, capsys):
    """A CUDA generator's state (16 bytes) cannot be loaded into a CPU one: such a resume (a Colab runtime switched
    from GPU to CPU) reseeds the sampler and the noise from seed and step, deterministically, and says so."""
    import io as _io

    run = tmp_path / "r"
    Trainer(smoke(iterations=20), run, data=small_replica, progress=False).run()
    state = load_checkpoint(run)
    assert state["rng_device"] == "cpu"
    state.update(rng_device="cuda", noise=torch.zeros(16, dtype=torch.uint8), sampler={"generator": torch.zeros(16, dtype=torch.uint8)})
    with pytest.raises(RuntimeError):  # what loading it as saved would do
        torch.Generator().set_state(state["noise"])
    buf = _io.BytesIO()
    torch.save(state, buf)
    for name in ("checkpoint.pt", "checkpoint-prev.pt"):
        (run / name).write_bytes(buf.getvalue())
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(run, copy)
    finals = []
    for folder in (run, copy):
        t = Trainer(smoke(iterations=40), folder, resume=True, data=small_replica, progress=False)
        assert t.step == 20
        t.run()
        finals.append(t.state_dict()["vae"])
        rows = read_history(folder)
        assert [r["step"] for r in rows] == [10, 20, 30, 40]
        assert "saved on cuda" in rows[2]["event"] and "event" not in rows[3]
    assert "resumed on cpu at step 20" in capsys.readouterr().err
    assert _same(*finals)  # deterministic: the same fresh draws every time
