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
from torch.nn.utils import parametrize

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
        self.phase_last_layer = True  # False: the last layer's training forward stays nn.ConvTranspose2d's

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.phase_last_layer and module_runs_as_written(self.deconvs)):
            return self.deconvs(self.fc(z))
        *hidden, last = self.deconvs
        h = self.fc(z)
        for layer in hidden:
            h = layer(h)
        if phase_deconv_applies(h, last):
            return PhaseDeconv.apply(h, last.weight, last.bias)  # the same layer, a faster forward (below)
        return last(h)


# (output phase, the kernel taps that reach it): output row 2i + p takes kernel row k from input row i + offset
_PHASE_TAPS = {0: ((1, 0), (3, -1)), 1: ((2, 0), (0, 1))}


def module_runs_as_written(module: nn.Module) -> bool:
    """No forward of the instance's own (torch.compile's), no module or parameter hooks, no parametrizations:
    the module computes what its class's forward says, so a faster path may stand in for it."""
    return ("forward" not in vars(module) and getattr(module, "_compiled_call_impl", None) is None
            and not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                     or module._backward_pre_hooks) and not parametrize.is_parametrized(module)
            and not any(p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None)
                        for p in module.parameters(recurse=False)))


def phase_deconv_applies(h: torch.Tensor, layer: nn.ConvTranspose2d) -> bool:
    """Whether :class:`PhaseDeconv` stands in for ``layer`` on ``h``: a training forward of the decoder's last
    layer on a CPU, channels_last, with one output channel (dSprites), in fp32 or in the bf16 fast path (bf16
    autocast, ``h`` in bf16). Evaluation, other autocasts, other devices and compiled or exported graphs keep
    ``nn.ConvTranspose2d``."""
    autocast = torch.is_autocast_enabled("cpu")
    precision = ((h.dtype == torch.float32 and not autocast) or
                 (h.dtype == torch.bfloat16 and autocast and torch.get_autocast_dtype("cpu") == torch.bfloat16))
    return (type(layer) is nn.ConvTranspose2d and module_runs_as_written(layer) and precision
            and h.device.type == "cpu" and layer.weight.dtype == torch.float32
            and layer.out_channels == 1 and layer.kernel_size == (4, 4) and layer.stride == (2, 2)
            and layer.padding == (1, 1) and layer.output_padding == (0, 0) and layer.groups == 1
            and layer.dilation == (1, 1) and layer.bias is not None and h.dim() == 4
            and h.is_contiguous(memory_format=torch.channels_last) and torch.is_grad_enabled()
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing() and not torch.jit.is_scripting())


class PhaseDeconv(torch.autograd.Function):
    """The decoder's last layer, ConvTranspose2d(32 -> 1, 4, stride 2, padding 1), with a faster forward on a CPU.

    oneDNN runs this one layer at about 10 GFLOP/s, a tenth of the other convolutions' rate (#21: 5-6 ms of a
    120 ms fp32 iteration for 67 MFLOP; 3.8 ms in bf16). Here one matrix product gives every input pixel's 4 x 4
    patch, and each of the four output phases (even/odd row, even/odd column) sums the four patches that reach
    it: about 2 ms. The same sums in another order: in fp32 the logits agree with ConvTranspose2d's to ~1e-6.
    A bf16 ``h`` (the fast path) is multiplied in fp32 and the logits come out in fp32: more precise than the
    bf16 ConvTranspose2d they replace (its logits are rounded to bf16), so they differ from those by up to
    ~1e-2. The backward is ConvTranspose2d's own (``convolution_backward``, in ``h``'s precision, as autocast
    runs it), so the gradients for given logits are the same bit for bit.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        b, c_in, height, width = h.shape
        dtype = torch.float32 if h.dtype == torch.bfloat16 else h.dtype  # bf16 is multiplied in fp32
        rows = h.permute(0, 2, 3, 1).reshape(-1, c_in).to(dtype)  # channels_last: a view, (b·H·W, c_in)
        with torch.autocast("cpu", enabled=False):
            patches = (rows @ weight.reshape(c_in, 16).to(dtype)).view(b, height, width, 4, 4)
        patches = nn.functional.pad(patches, (0, 0, 0, 0, 1, 1, 1, 1))  # a zero patch around the border
        logits = torch.empty(b, 1, 2 * height, 2 * width, dtype=dtype, device=h.device,
                             memory_format=torch.channels_last)
        out = logits.permute(0, 2, 3, 1).view(b, height, 2, width, 2)  # (row, row phase, column, column phase)
        for py, row_taps in _PHASE_TAPS.items():
            for px, col_taps in _PHASE_TAPS.items():
                acc = None
                for ky, di in row_taps:
                    for kx, dj in col_taps:
                        tap = patches[:, 1 + di:1 + di + height, 1 + dj:1 + dj + width, ky, kx]
                        acc = tap + bias if acc is None else acc + tap
                out[:, :, py, :, px] = acc
        return logits

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight = ctx.saved_tensors
        dtype = h.dtype  # bf16 in the fast path: the gradients autocast's bf16 layer would give, cast back
        with torch.autocast("cpu", enabled=False):
            grad_h, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad.to(dtype), h, weight.to(dtype), [weight.shape[1]], [2, 2], [1, 1], [1, 1], True, [0, 0], 1,
                list(ctx.needs_input_grad))
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(weight.dtype))


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

    # -- D's update written out (fvae_lib.algorithm.factor_vae_step) ------------------------------------
    # D's update in Algorithm 2 reuses D(z) of the VAE step for class 0 and runs D on permute_dims(z') for
    # class 1. Left to autograd, that is two backward passes over D's layers, 64 rows each, and their weight
    # gradients summed. Written out, it is one pass over 128 rows: the same FLOPs in half as many matrix
    # products, each over twice the rows, and no sums of 1000 x 1000 gradients (#21: about 8% of an fp32
    # iteration on a 2-core CPU).

    def forward_keeping_inputs(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """D(z), and the input of each linear layer (z, then each LeakyReLU's output): what
        :meth:`backward_by_hand` needs. In a graph like ``forward``'s, so autograd can still go through it."""
        inputs, h = [], z
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                inputs.append(h)
            h = layer(h)
        return h, inputs

    def runs_as_written(self) -> bool:
        """Whether calling D computes exactly what :meth:`forward_keeping_inputs` and :meth:`backward_by_hand`
        assume: this class's ``forward`` (not a subclass's, not torch.compile's), its Linear / LeakyReLU stack
        unchanged, no hooks or parametrizations, every parameter trained. Otherwise the step leaves D to autograd."""
        layers = list(self.net)
        stack = (len(layers) % 2 == 1 and all(type(m) is nn.Linear and m.bias is not None for m in layers[::2])
                 and all(type(m) is nn.LeakyReLU and m.negative_slope >= 0 for m in layers[1::2]))
        return (type(self).forward is Discriminator.forward and type(self.net) is nn.Sequential and stack
                and all(module_runs_as_written(m) for m in self.modules())
                and all(p.requires_grad for p in self.parameters()))

    def backward_by_hand(self, grad_logits: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        """Add to each parameter's ``.grad`` the gradient of a loss whose gradient with respect to D's logits
        is ``grad_logits`` (n, 2), for the n rows whose layer inputs are ``inputs`` (as
        :meth:`forward_keeping_inputs` returns them; rows of several calls may be concatenated).

        The backward autograd runs for these layers (``addmm``, LeakyReLU), in one pass: for each linear layer
        from the last, ∂W = δᵀ·input, ∂b = Σ δ, and δ ← LeakyReLU′(input) ⊙ (δ·W) for the layer below. Equal to
        autograd's gradients up to the order of the sums (tests/test_models.py)."""
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        slopes = [m.negative_slope for m in self.net if isinstance(m, nn.LeakyReLU)]
        if len(inputs) != len(linears):
            raise ValueError(f"backward_by_hand takes the inputs of D's {len(linears)} linear layers, got {len(inputs)}")
        with torch.no_grad():
            delta = grad_logits
            for i in range(len(linears) - 1, -1, -1):
                layer, x = linears[i], inputs[i]
                for param, grad in ((layer.weight, delta.t() @ x), (layer.bias, delta.sum(0))):
                    if param.grad is None:
                        param.grad = grad
                    else:
                        param.grad += grad
                if i:  # x is the output of the LeakyReLU below this layer: its derivative is read off x
                    delta = torch.ops.aten.leaky_relu_backward(delta @ layer.weight, x, slopes[i - 1], True)
