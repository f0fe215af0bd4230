"""Which device "auto" means: the GPU when PyTorch sees one, else the CPU, and what trains here in words."""
import torch

from fvae_lib.device import default_device, device_name


def test_auto_is_the_cpu_without_a_gpu_and_names_its_threads(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    assert device_name() == f"cpu ({torch.get_num_threads()} threads)"


def test_auto_is_the_gpu_when_pytorch_sees_one_and_names_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Test GPU 80GB")
    assert default_device() == torch.device("cuda")
    assert device_name() == "Test GPU 80GB"
