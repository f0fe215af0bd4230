"""The paper's networks (Kim & Mnih 2018, Appendix A): encoder, decoder, discriminator, and the VAE.

Shapes are written beside the layers for a batch of B images of 64 x 64 with C channels.

Choices the paper leaves open, and what we took:
* The encoder's FC 128 is followed by a ReLU (as 1Konny and nicolasigor do). Without it the two final
  linear layers would compose into a single linear map, making the FC 128 layer pointless.
* The discriminator has **6 hidden layers** of 1000 units (LeakyReLU 0.2) and a linear output of 2
  logits: the most literal reading of the paper's "6 layer MLP ... 1000 hidden units per layer", and
  the one disentanglement_lib (the benchmark most scores are compared against), paruby and nicolasigor
  use. ``Discriminator(hidden_layers=5)`` gives the other reading (1Konny, YannDubs, InfoGAN-CR).
* Weights use PyTorch's default initialisation; the paper states none.
"""
from __future__ import annotations

import torch
from torch import nn

from .gaussians import reparameterise


class Encoder(nn.Module):
    """q(z|x): image -> (mean, log-variance) of a diagonal Gaussian over z."""

    def __init__(self, z_dim: int = 10, channels: int = 1, hidden: int = 128):
        super().__init__()
        self.z_dim = z_dim
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 32, 32, 32)
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 32, 16, 16)
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 64, 8, 8)
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 64, 4, 4)
        )
        self.fc = nn.Sequential(
            nn.Flatten(),  # (B, 1024)
            nn.Linear(64 * 4 * 4, hidden), nn.ReLU(inplace=True),  # (B, hidden)
            nn.Linear(hidden, 2 * z_dim),  # (B, 2 z_dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x))  # (B, 2 z_dim)
        mu, logvar = h.chunk(2, dim=1)  # (B, z_dim) each
        return mu, logvar


class Decoder(nn.Module):
    """p(x|z): latent -> Bernoulli logits of every pixel."""

    def __init__(self, z_dim: int = 10, channels: int = 1, hidden: int = 128):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(inplace=True),  # (B, hidden)
            nn.Linear(hidden, 64 * 4 * 4), nn.ReLU(inplace=True),  # (B, 1024)
            nn.Unflatten(1, (64, 4, 4)),  # (B, 64, 4, 4)
        )
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 64, 8, 8)
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 32, 16, 16)
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(inplace=True),  # (B, 32, 32, 32)
            nn.ConvTranspose2d(32, channels, 4, 2, 1),  # (B, C, 64, 64) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconvs(self.fc(z))


class VAE(nn.Module):
    """Encoder and decoder with the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I).

    hidden: the FC width; by default the paper's: 128 for 1-channel data (dSprites), 256 for 64 x 64 x 3 data
    (3D Shapes, CelebA, Chairs).
    """

    def __init__(self, z_dim: int = 10, channels: int = 1, hidden: int | None = None):
        super().__init__()
        hidden = hidden or (256 if channels == 3 else 128)
        self.z_dim = z_dim
        self.encoder = Encoder(z_dim, channels, hidden)
        self.decoder = Decoder(z_dim, channels, hidden)

    reparameterise = staticmethod(reparameterise)  # z = mu + σ · ε (fvae_lib.gaussians)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Returns (logits (B, C, 64, 64), mu (B, d), logvar (B, d), z (B, d))."""
        mu, logvar = self.encoder(x)
        # the sample in fp32 even under bf16 autocast: z feeds the discriminator, which runs in fp32
        z = self.reparameterise(mu.float(), logvar.float(), generator)
        return self.decoder(z), mu, logvar, z


class Discriminator(nn.Module):
    """D(z): 2 logits; class 0 means "drawn from q(z)", class 1 "drawn from the product of marginals".

    logit_0 - logit_1 = log D(z) / (1 - D(z)) estimates log q(z) / q_bar(z) (the density-ratio trick).
    """

    def __init__(self, z_dim: int = 10, hidden: int = 1000, hidden_layers: int = 6):
        super().__init__()
        layers: list[nn.Module] = []
        width = z_dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2, inplace=True)]  # (B, 1000)
            width = hidden
        layers.append(nn.Linear(width, 2))  # (B, 2)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
