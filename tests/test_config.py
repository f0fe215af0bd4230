"""The run config: presets, the paper's settings written once, refusals before any work, the fast path."""
import pytest
import torch

from fvae_lib.config import ConfigError, TrainConfig


def smoke(**overrides):
    return TrainConfig.from_preset("smoke", **{"threads": 1, **overrides})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(gamma=-1.0), "gamma must be"),
        (dict(gamma=float("nan")), "gamma must be"),
        (dict(beta=-0.5), "beta must be"),
        (dict(batch_size=20000), "larger than the dataset"),
        (dict(checkpoint_every=15), "multiple of log_every"),
        (dict(precision="fp8"), "precision"),
        (dict(data_steps={"colour": 2}), "data_steps: steps names unknown factors"),
    ],
)
def test_bad_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        smoke(**overrides)


def test_unknown_preset_and_model_are_refused():
    with pytest.raises(ConfigError, match="unknown preset"):
        TrainConfig.from_preset("huge")
    with pytest.raises(ConfigError, match="unknown model"):
        TrainConfig.from_preset("smoke", model="vqvae")

def test_preset_follows_the_device_and_the_papers_scale_is_asked_for_by_name():
    from fvae_lib.config import PRESETS, default_preset

    cfg = TrainConfig.from_preset(None, device="cpu")
    assert cfg.preset == "cpu" and cfg.batch_size == 64
    assert default_preset(torch.device("cuda")) == "gpu" and default_preset(torch.device("cpu")) == "cpu"
    assert PRESETS["gpu"]["iterations"] <= TrainConfig().iterations // 10  # minutes, not hours


def test_the_papers_settings_are_written_once():
    # the paper preset is the dataclass defaults themselves; only the run's name differs
    paper, defaults = TrainConfig.from_preset("paper", device="cpu").to_dict(), TrainConfig().to_dict()
    assert {k for k in paper if paper[k] != defaults[k]} <= {"device"}, paper
    assert defaults["batch_size"] == 64 and defaults["iterations"] == 300_000 and defaults["snapshot_every"] > 0
    paper = TrainConfig.from_preset("paper", device="cpu")
    assert (paper.batch_size, paper.iterations, paper.gamma, paper.z_dim) == (64, 300_000, 35.0, 10)
    assert TrainConfig.from_preset("paper", model="betavae", device="cpu").beta == 4.0

def test_fast_path_resolution(monkeypatch):
    import fvae_lib.config as train

    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: True)
    cpu = torch.device("cpu")
    assert train.resolve_fast_path(smoke(), cpu) == ("bf16", True)
    assert train.resolve_fast_path(smoke(precision="fp32"), cpu) == ("fp32", True)
    assert train.resolve_fast_path(smoke(precision="fp32", channels_last=False), cpu) == ("fp32", False)
    assert train.resolve_fast_path(smoke(), torch.device("cuda")) == ("fp32", False)  # GPUs: not measured yet
    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: False)
    assert train.resolve_fast_path(smoke(), cpu) == ("fp32", True)  # emulated bf16 would be slower; NHWC pays in fp32 too
    assert train.resolve_fast_path(smoke(channels_last=False), cpu) == ("fp32", False)


def test_a_run_config_from_a_file_is_validated():
    from fvae_lib.config import TrainConfig

    good = TrainConfig.from_preset("smoke").to_dict()
    assert TrainConfig.from_dict(good) == TrainConfig.from_preset("smoke")
    for bad, message in [(dict(iterations="5000"), "iterations must be int"), (dict(seed=True), "seed must be int"),
                         (dict(gamma=-1.0), "gamma must be a finite number >= 0"), (dict(betas_d=[0.5]), "betas_d must be")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict(dict(good, **bad))


def test_configs_of_older_run_folders_still_load():
    from fvae_lib.config import TrainConfig

    old = dict(TrainConfig.from_preset("smoke").to_dict(), compile=False)  # before compile took a mode name
    assert TrainConfig.from_dict(old).compile == "off"
    assert TrainConfig.from_dict(dict(old, compile=True)).compile == "default"


@pytest.mark.parametrize("variable", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
def test_a_onednn_cap_below_bf16_means_bf16_is_not_native(monkeypatch, variable):
    """Capping oneDNN at AVX2 (how an AVX2-only CPU is emulated on a newer one) makes it emulate bf16 too."""
    from fvae_lib.config import cpu_has_native_bf16

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    uncapped = cpu_has_native_bf16()
    monkeypatch.setenv(variable, "AVX2")
    assert cpu_has_native_bf16() is False
    monkeypatch.setenv(variable, "AVX512_CORE_BF16")
    assert cpu_has_native_bf16() is uncapped  # a cap at or above bf16 leaves the CPU's own answer
