"""Uniform random training batches drawn on the training device: no DataLoader, no host round trip."""
from __future__ import annotations


import torch

from typing import TYPE_CHECKING

from .cache import unpack_images

if TYPE_CHECKING:
    from .dsprites import DSprites


class BatchSampler:
    """Uniform random training batches, drawn on the training device with no DataLoader.

    The packed images live on ``device`` (377 MB for the full grid); each batch is an index draw
    from a ``torch.Generator`` on that device, a gather and a bit-unpack, so on a GPU no batch ever
    crosses the PCIe bus and nothing synchronises with the host. ``state_dict`` holds the generator
    state, so a resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, data: DSprites, batch_size: int, device: str | torch.device = "cpu", seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        if batch_size < 1 or batch_size > len(data):
            raise ValueError(f"batch_size must be between 1 and the dataset size {len(data)}, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.dtype = dtype
        self.packed = data.packed_on(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def indices(self) -> torch.Tensor:
        return torch.randint(len(self.packed), (self.batch_size,), generator=self.generator, device=self.device)

    def sample(self) -> torch.Tensor:
        """(batch_size, 1, 64, 64) images of 0/1 values on the device."""
        return unpack_images(self.packed[self.indices()], self.dtype)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
