"""VAE-GAN (Larsen et al. 2015, "Autoencoding beyond pixels using a learned similarity metric").

A variational autoencoder whose reconstruction error is measured on a GAN discriminator's
hidden features instead of on pixels, with the decoder doubling as the GAN's generator.
The shapes follow Terence Broad's "Autoencoding Blade Runner" (2016): 256x144 frames, a
200-number latent, four 5x5 stride-2 convolutions with 80/160/320/640 filters.

Read top to bottom: config, the three networks, then `VAEGAN`, which holds them, computes
the losses of the paper's Algorithm 1 and routes each loss to the network it trains.

Where this follows the paper, the blog, the paper's code, or none of them:

* Paper: the encoder is trained on KL + similarity, the decoder on gamma * similarity
  - L_GAN, the discriminator on L_GAN only: no GAN gradient reaches the encoder and no
  similarity gradient reaches the discriminator. The discriminator also sees decoded
  samples from the prior, ``Dec(z_p), z_p ~ N(0, I)``, besides reconstructions. The
  similarity is the Gaussian negative log-likelihood of the discriminator's features, i.e.
  half the summed squared difference per frame. The decoder uses ReLU, as in the paper.
* Blog: 256x144 frames, a 200-number latent, four 5x5 stride-2 convolutions of
  80/160/320/640 filters to 9x16x640; leaky ReLU 0.2 in the encoder and discriminator; batch
  norm after the first convolution; dense layers to the latent mean and log-variance; the
  similarity over the discriminator's conv layers (``similarity_layers``; the paper used
  one); Adam 2e-4, beta1 0.5, batch 12.
* The paper's code (andersbll/autoencoding_beyond_pixels): the discriminator sees real,
  reconstructed and prior frames as one batch, so batch norm does not normalise away a
  reconstruction's overall colour or contrast. Its trick of skipping discriminator or
  decoder updates far from an equilibrium is not in the paper and not used here.
* Ours: losses are per-frame sums divided by the values in a frame (H*W*3): the paper's
  balance between KL and similarity, at a scale (and a ``gamma``) that does not depend on
  the frame size. Prior samples are decoded in their own batch without moving batch norm's
  running statistics, which inference (posterior means only) uses. Frame sizes that
  2**layers does not divide work too (128x72: each convolution rounds up, each decoder layer
  goes back to the mirrored size). ``pixel_weight`` (default 0, off) adds the plain VAE's
  pixel likelihood to the similarity, for faster PSNR gains on short runs.
* Not the blog's: the decoder upsamples by resize-convolutions (nearest neighbour, then a
  stride-1 convolution; Odena et al. 2016) by default, ``upsample="transposed"`` for the
  paper's and blog's stride-2 transposed convolutions, which paint a checkerboard and, at 64x36,
  learnt far slower (16.1 against 21.0 dB after 200 steps, docs/results/vaegan_cpu.json).
  ``spectral_norm`` on the discriminator (off: with the non-saturating loss it learnt slower)
  and ``kl_weight`` (1, the paper's balance; not yet measured) are knobs, not defaults.
  Configs saved before these fields existed load as they were trained (`LEGACY`).

Pure torch: this file never imports ``chain``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

GAN_LOSSES = ("minimax", "non_saturating")
UPSAMPLES = ("transposed", "resize")


# -----------------------------------------------------------------------------
# Config


@dataclass
class VAEGANConfig:
    """Everything that shapes a VAE-GAN. The defaults are the Blade Runner model.

    ``filters`` gives the channels of each stride-2 convolution (encoder and discriminator;
    the decoder mirrors them). ``similarity_layers`` are indices into the discriminator's
    convolutions whose outputs the similarity compares. ``gamma`` weighs similarity against
    the GAN term in the decoder's loss. ``gan_loss`` is the paper's "minimax" (the decoder
    maximises the discriminator's loss) or "non_saturating" (it minimises -log D(fake)).
    ``pixel_weight`` > 0 adds that much of the pixel-space likelihood to the similarity (not in
    the paper; 0 leaves it out). ``upsample`` is the decoder's: "resize" (nearest neighbour then a
    convolution) or "transposed" (the first checkpoints'). ``spectral_norm`` wraps the
    discriminator's layers in spectral normalisation; ``kl_weight`` multiplies the KL term.
    """

    height: int = 144
    width: int = 256
    latent_dim: int = 200
    filters: tuple[int, ...] = (80, 160, 320, 640)
    kernel_size: int = 5
    leak: float = 0.2
    similarity_layers: tuple[int, ...] = (0, 1, 2, 3)
    gamma: float = 1.0
    gan_loss: str = "minimax"
    pixel_weight: float = 0.0
    upsample: str = "resize"
    spectral_norm: bool = False
    kl_weight: float = 1.0

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists.
        self.filters = tuple(int(f) for f in self.filters)
        self.similarity_layers = tuple(int(i) for i in self.similarity_layers)
        if not self.filters or min(self.filters) < 1:
            raise ValueError(f"filters must be one or more positive channel counts, got {self.filters}")
        smallest = 2 ** len(self.filters)
        if self.height < smallest or self.width < smallest:
            raise ValueError(f"frames of {self.width}x{self.height} are too small for {len(self.filters)} "
                             f"stride-2 convolutions; use at least {smallest}x{smallest}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if not self.similarity_layers or any(not 0 <= i < len(self.filters) for i in self.similarity_layers):
            raise ValueError(f"similarity_layers must index the {len(self.filters)} discriminator convolutions "
                             f"(0..{len(self.filters) - 1}), got {self.similarity_layers}")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if self.pixel_weight < 0:
            raise ValueError(f"pixel_weight must be >= 0, got {self.pixel_weight}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, not {self.upsample!r}")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, not {self.gan_loss!r}")

    @classmethod
    def from_saved(cls, saved: dict) -> VAEGANConfig:
        """A config from a saved ``config.json`` dict: fields it lacks (it predates them) take the
        values that rebuild the network it was saved from (`LEGACY`), not today's defaults."""
        return cls(**{**LEGACY, **saved})

    @property
    def grids(self) -> list[tuple[int, int]]:
        """``(h, w)`` before each convolution and after the last: 144x256 → ... → 9x16."""
        sizes = [(self.height, self.width)]
        for _ in self.filters:
            h, w = sizes[-1]
            sizes.append((math.ceil(h / 2), math.ceil(w / 2)))  # what a k×k, stride-2, pad-k//2 conv gives
        return sizes

    @property
    def flat_features(self) -> int:
        """Values in the innermost feature map (9*16*640 = 92160 for the Blade Runner model)."""
        h, w = self.grids[-1]
        return h * w * self.filters[-1]


#: What fields added after the first checkpoints were written meant before they existed.
LEGACY: dict[str, object] = {"upsample": "transposed", "spectral_norm": False, "kl_weight": 1.0}


# -----------------------------------------------------------------------------
# The networks


def down_block(config: VAEGANConfig, cin: int, cout: int, batch_norm: bool,
               spectral: bool = False) -> nn.Sequential:
    """5x5 stride-2 convolution, batch norm (except on the first layer), leaky ReLU.

    ``spectral`` wraps the convolution in spectral normalisation (Miyato et al. 2018).
    """
    k = config.kernel_size
    conv = nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=not batch_norm)
    layers: list[nn.Module] = [nn.utils.parametrizations.spectral_norm(conv) if spectral else conv]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(config.leak))
    return nn.Sequential(*layers)


def conv_stack(config: VAEGANConfig, spectral: bool = False) -> nn.ModuleList:
    """The encoder's and the discriminator's shared shape: 3 → 80 → 160 → 320 → 640 channels."""
    channels = (3, *config.filters)
    return nn.ModuleList(down_block(config, channels[i], channels[i + 1], batch_norm=i > 0, spectral=spectral)
                         for i in range(len(config.filters)))


class Encoder(nn.Module):
    """Frames ``[B, 3, H, W]`` in [-1, 1] → the posterior's mean and log-variance ``[B, latent_dim]`` each."""

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__()
        self.convs = conv_stack(config)
        self.mean = nn.Linear(config.flat_features, config.latent_dim)
        self.logvar = nn.Linear(config.flat_features, config.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.convs:
            x = conv(x)
        x = x.flatten(1)
        return self.mean(x), self.logvar(x)


class ResizeConv2d(nn.Conv2d):
    """Nearest-neighbour upsampling to ``size``, then a stride-1 convolution (Odena et al. 2016): every
    output pixel sees the same number of kernel taps, so, unlike a stride-2 transposed convolution,
    no checkerboard. One module, so the decoder's state_dict keys are those of the transposed one."""

    def __init__(self, cin: int, cout: int, kernel_size: int, *, size: tuple[int, int], bias: bool) -> None:
        super().__init__(cin, cout, kernel_size, padding=kernel_size // 2, bias=bias)
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, size=self.size, mode="nearest"))


class Decoder(nn.Module):
    """Latents ``[B, latent_dim]`` → frames ``[B, 3, H, W]`` in [-1, 1]: the encoder mirrored.

    A dense layer makes the innermost 9x16x640 map; each layer doubles the grid back to the
    encoder's size at that depth: a resize-convolution (`ResizeConv2d`, the default) or a
    transposed convolution whose ``output_padding`` picks the encoder's size where that was odd.
    """

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__()
        self.grid = config.grids[-1]
        self.channels = config.filters[-1]
        self.fc = nn.Linear(config.latent_dim, config.flat_features, bias=False)
        self.fc_norm = nn.BatchNorm2d(self.channels)
        k = config.kernel_size
        grids = config.grids
        outs = (*reversed(config.filters[:-1]), 3)  # 640 → 320 → 160 → 80 → 3
        ins = tuple(reversed(config.filters))
        self.ups = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip(ins, outs)):
            (h_in, w_in), (h_out, w_out) = grids[-1 - i], grids[-2 - i]
            # A stride-2 transposed conv with padding k//2 gives 2*n - 1 + output_padding.
            padding = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            last = i == len(ins) - 1
            layers: list[nn.Module]
            if config.upsample == "resize":
                layers = [ResizeConv2d(cin, cout, k, size=(h_out, w_out), bias=last)]
            else:
                layers = [nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2,
                                             output_padding=padding, bias=last)]
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU()]
            self.ups.append(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.channels, *self.grid)
        x = F.relu(self.fc_norm(x))
        for up in self.ups:
            x = up(x)
        return torch.tanh(x)


class Discriminator(nn.Module):
    """Frames → a real/fake logit ``[B]`` and the output of every convolution (for the similarity)."""

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__()
        self.convs = conv_stack(config, spectral=config.spectral_norm)
        out = nn.Linear(config.flat_features, 1)
        self.out = nn.utils.parametrizations.spectral_norm(out) if config.spectral_norm else out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = conv(x)
            features.append(x)
        return self.out(x.flatten(1)).squeeze(1), features


# -----------------------------------------------------------------------------
# The VAE-GAN: losses and which network each one trains


@dataclass
class VAEGANLosses:
    """One batch's losses (float32 scalars), plus what the training log shows."""

    kl: torch.Tensor               # KL(q(z|x) || N(0, I))
    similarity: torch.Tensor       # feature-space reconstruction error, -log p(Dis_l(x) | z)
    discriminator: torch.Tensor    # -[log D(x) + log(1 - D(x~)) + log(1 - D(x_p))]
    decoder_gan: torch.Tensor      # the GAN term of the decoder's loss (its sign per config.gan_loss)
    gamma: float
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # detached, for logging only

    @property
    def encoder(self) -> torch.Tensor:
        return self.kl + self.similarity

    @property
    def decoder(self) -> torch.Tensor:
        return self.gamma * self.similarity + self.decoder_gan


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence of N(mean, exp(logvar)) from N(0, I), summed over the latent, per frame."""
    return -0.5 * (1 + logvar - mean.square() - logvar.exp()).sum(dim=1)


def similarity_loss(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-frame Gaussian negative log-likelihood (unit variance, constant dropped) of the real
    frames' features given the reconstructions': half the summed squared difference, over layers."""
    total = 0
    for a, b in zip(real, fake):
        total = total + 0.5 * (a.float() - b.float()).square().flatten(1).sum(dim=1)
    return total


def discriminator_gan_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - sum over fakes of log(1 - D(fake)), each a batch mean; D = sigmoid(logit)."""
    loss = F.softplus(-real_logits.float()).mean()  # -log sigmoid(l) = softplus(-l)
    for logits in fake_logits:
        loss = loss + F.softplus(logits.float()).mean()  # -log(1 - sigmoid(l)) = softplus(l)
    return loss


def decoder_gan_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor, kind: str = "minimax") -> torch.Tensor:
    """The decoder's GAN term. "minimax" is the paper's -L_GAN: minus the discriminator's loss,
    real term included (with batch norm over real and fake frames together, D(x) too depends on
    the decoder). "non_saturating" is the sum of -log D(fake), which keeps a gradient when the
    discriminator wins (Goodfellow et al. 2014)."""
    if kind == "minimax":
        return -discriminator_gan_loss(real_logits, *fake_logits)
    return sum(F.softplus(-logits.float()).mean() for logits in fake_logits)


@contextlib.contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Batch norm layers in ``module`` keep normalising with batch statistics (in train mode) but
    leave their running statistics as they are (momentum 0)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


class VAEGAN(nn.Module):
    """Encoder, decoder and discriminator, with the paper's losses and gradient routing."""

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.discriminator = Discriminator(config)
        # Losses are per-frame sums; dividing by the values in a frame keeps them O(1) at any size.
        self.normalizer = float(config.height * config.width * 3)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + sigma * eps, eps ~ N(0, I): the reparameterisation trick."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + (0.5 * logvar).exp() * eps

    def reconstruct(self, x: torch.Tensor, *, noise: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode the posterior mean, plus ``noise`` standard deviations of noise in latent units.

        For inference the latent noise is plain N(0, noise^2), not the posterior's sigma: it is
        an artistic knob and should not depend on how sure the encoder is.
        """
        mean, _ = self.encoder(x)
        if noise:
            mean = mean + noise * torch.randn(mean.shape, generator=generator, device=mean.device,
                                              dtype=mean.dtype)
        return self.decoder(mean)

    def losses(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEGANLosses:
        """Algorithm 1 of the paper, forward half: encode, decode, decode prior samples, discriminate.

        ``x`` is a batch of real frames in [-1, 1]; ``generator`` draws the posterior and prior
        noise (pass a seeded one for reproducible training).
        """
        batch = x.shape[0]
        mean, logvar = self.encoder(x)
        mean, logvar = mean.float(), logvar.float()
        z = self.sample(mean, logvar, generator=generator)
        z_prior = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        x_recon = self.decoder(z)
        # Prior samples are decoded in a batch of their own, without touching batch norm's running
        # statistics: inference decodes posterior means only, so those statistics should come
        # from reconstructions alone.
        with frozen_running_stats(self.decoder):
            x_prior = self.decoder(z_prior)
        # The discriminator sees real, reconstructed and prior frames as one batch, as in the
        # authors' code: shared batch statistics keep the similarity sensitive to a frame's
        # overall colour and contrast, which batch norm over separate batches would normalise away.
        logits, features = self.discriminator(torch.cat([x, x_recon.to(x.dtype), x_prior.to(x.dtype)]))
        real_logits, recon_logits, prior_logits = logits[:batch], logits[batch:2 * batch], logits[2 * batch:]
        real_features = [f[:batch] for f in features]
        recon_features = [f[batch:2 * batch] for f in features]

        layers = self.config.similarity_layers
        similarity = similarity_loss([real_features[i] for i in layers], [recon_features[i] for i in layers])
        if self.config.pixel_weight:
            # Not in the paper: the plain VAE's pixel likelihood, added to the learned one.
            similarity = similarity + self.config.pixel_weight * similarity_loss([x], [x_recon])
        with torch.no_grad():
            stats = {
                "d_real": torch.sigmoid(real_logits.float()).mean(),
                "d_recon": torch.sigmoid(recon_logits.float()).mean(),
                "d_prior": torch.sigmoid(prior_logits.float()).mean(),
                "pixel_mse": (x_recon.float() - x.float()).square().mean(),  # in [-1, 1] units
            }
        return VAEGANLosses(
            kl=self.config.kl_weight * kl_loss(mean, logvar).mean() / self.normalizer,
            similarity=similarity.mean() / self.normalizer,
            discriminator=discriminator_gan_loss(real_logits, recon_logits, prior_logits),
            decoder_gan=decoder_gan_loss(real_logits, recon_logits, prior_logits, kind=self.config.gan_loss),
            gamma=self.config.gamma,
            stats=stats,
        )

    def backward(self, losses: VAEGANLosses,
                 scale: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss) -> None:
        """Algorithm 1, backward half: set each network's ``.grad`` from its own loss only.

        encoder ← d(KL + similarity), decoder ← d(gamma * similarity + GAN term),
        discriminator ← d(GAN loss). The three losses share one graph, so each gradient is
        taken with `torch.autograd.grad` for just that network's parameters; the GAN loss
        never reaches the encoder and the similarity never reaches the discriminator.
        ``scale`` multiplies losses before differentiating (a GradScaler's ``scale``).
        """
        enc = list(self.encoder.parameters())
        dec = list(self.decoder.parameters())
        dis = list(self.discriminator.parameters())
        # Pass 1: KL + similarity, for the encoder; the decoder's similarity gradient comes free.
        grads = torch.autograd.grad(scale(losses.encoder), enc + dec, retain_graph=True)
        enc_grads, dec_similarity = grads[:len(enc)], grads[len(enc):]
        if self.config.gan_loss == "minimax":
            # Pass 2: the decoder's GAN term is minus the discriminator's loss: one pass serves both.
            grads = torch.autograd.grad(scale(losses.discriminator), dec + dis)
            dec_gan = [-g for g in grads[:len(dec)]]
            dis_grads = grads[len(dec):]
        else:
            dis_grads = torch.autograd.grad(scale(losses.discriminator), dis, retain_graph=True)
            dec_gan = torch.autograd.grad(scale(losses.decoder_gan), dec)
        dec_grads = [losses.gamma * s + g for s, g in zip(dec_similarity, dec_gan)]
        for params, grads in ((enc, enc_grads), (dec, dec_grads), (dis, dis_grads)):
            for param, grad in zip(params, grads):
                param.grad = grad


def make_optimizers(model: VAEGAN, lr: float = 2e-4, beta1: float = 0.5) -> dict[str, torch.optim.Adam]:
    """One Adam per network, as the paper trains them with separate updates."""
    return {name: torch.optim.Adam(getattr(model, name).parameters(), lr=lr, betas=(beta1, 0.999))
            for name in ("encoder", "decoder", "discriminator")}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
