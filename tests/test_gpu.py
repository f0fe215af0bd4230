"""GPU checks: skipped without CUDA (as in CI); run on a GPU machine with ``pytest -m gpu``
(``benchmarks/device_check.sh`` runs them on the device)."""
import numpy as np
import pytest
import torch

from fvae_lib.data import BatchSampler
from fvae_lib.encoding import encoder_representation
from fvae_lib.config import TrainConfig
from fvae_lib.runs import RunFolder, load_model
from fvae_lib.train import Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")]


def test_sampler_on_gpu(small_replica):
    sampler = BatchSampler(small_replica, batch_size=64, device="cuda")
    state = sampler.state_dict()
    idx = sampler.indices()
    sampler.load_state_dict(state)  # the same draw again, now as images
    x = sampler.sample()
    assert x.is_cuda and sampler.packed.is_cuda and x.dtype == torch.float32
    np.testing.assert_array_equal(x.cpu().numpy(), small_replica.images(idx.cpu().numpy()).numpy())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_factorvae_trains_on_gpu_and_its_checkpoint_opens_on_a_cpu(tmp_path, small_replica, precision):
    cfg = TrainConfig.from_preset("smoke", device="cuda", precision=precision, iterations=60, log_every=20)
    trainer = Trainer(cfg, tmp_path / "r", data=small_replica, progress=False)
    rows = trainer.run()
    assert trainer.vae.encoder.convs[0].weight.is_cuda
    assert all(np.isfinite([r["recon"], r["kl"], r["tc"], r["d_loss"]]).all() for r in rows)
    assert rows[-1]["recon"] < rows[0]["recon"]
    state = RunFolder(tmp_path / "r").load_checkpoint()  # weights_only, mapped to the CPU
    assert state["step"] == 60 and not state["vae"]["encoder.convs.0.weight"].is_cuda
    vae, _ = load_model(tmp_path / "r")
    x = small_replica.images(np.arange(16))
    with torch.no_grad():
        cpu_mu = vae.encoder(x)[0]
        gpu_mu = trainer.vae.eval().encoder(x.cuda())[0].cpu()
    torch.testing.assert_close(gpu_mu, cpu_mu, rtol=2e-2, atol=2e-3)  # TF32 / cuDNN rounding


def test_resume_on_gpu_continues_the_run(tmp_path, small_replica):
    def cfg(n):
        return TrainConfig.from_preset("smoke", device="cuda", iterations=n, log_every=10, checkpoint_every=20)

    Trainer(cfg(20), tmp_path / "r", data=small_replica, progress=False).run()
    resumed = Trainer(cfg(40), tmp_path / "r", resume=True, data=small_replica, progress=False)
    assert resumed.step == 20 and resumed.sampler.packed.is_cuda
    resumed.run()
    assert RunFolder(tmp_path / "r").load_checkpoint()["step"] == 40


def test_encoder_representation_on_gpu_matches_the_cpu(small_replica):
    from fvae_lib.models import VAE

    torch.manual_seed(0)
    vae = VAE(10)
    x = small_replica.images(np.arange(0, len(small_replica), 37))
    cpu = encoder_representation(vae)(x)
    gpu = encoder_representation(vae.cuda())(x)
    np.testing.assert_allclose(gpu, cpu, rtol=2e-2, atol=2e-3)


def test_mig_sampled_on_gpu_matches_the_cpu():
    from fvae_lib.data import FactorObservations
    from fvae_lib.metrics import mig_sampled

    toy = FactorObservations((4, 5, 6))

    def posterior(x):
        mu = x.numpy()
        return np.concatenate([mu, np.full_like(mu, 2 * np.log(0.05))], axis=1)

    cpu = mig_sampled(toy, posterior, np.random.default_rng(0), device="cpu")
    gpu = mig_sampled(toy, posterior, np.random.default_rng(0), device="cuda")
    assert abs(cpu["mig"] - gpu["mig"]) < 1e-4
