"""The discriminator SPADE trains against, its losses, and NVlabs' weight initialisation.

Park et al. 2019 train the generator against pix2pixHD's multi-scale PatchGAN: ``num_d``
copies of a 4x4-conv patch discriminator, each seeing the (label map, image) pair at half
the resolution of the one before, with spectral norm and instance norm (``norm_D =
spectralinstance``). Losses are the hinge GAN loss and discriminator feature matching
(L1 between the intermediate features for the real and the generated image).

Pure torch: this file never imports ``chain``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.spade import SpectralNormConv2d

# Intermediate features of one discriminator, last entry = patch scores; one list per scale.
Features = list[list[torch.Tensor]]


@dataclass
class PatchDiscriminatorConfig:
    """NVlabs' defaults: 2 scales, 4 conv layers (+ the score layer), 64 filters doubling to 512."""

    input_nc: int            # label channels (one-hot + edges) + 3 image channels
    ndf: int = 64
    n_layers: int = 4
    num_d: int = 2
    max_filters: int = 512


class PatchDiscriminator(nn.Module):
    """One PatchGAN: returns every layer's output so the generator can match features."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        kernel, padding = 4, math.ceil((4 - 1) / 2)
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(config.input_nc, config.ndf, kernel, 2, padding), nn.LeakyReLU(0.2))])
        channels = config.ndf
        for index in range(1, config.n_layers):
            previous, channels = channels, min(channels * 2, config.max_filters)
            stride = 1 if index == config.n_layers - 1 else 2
            self.layers.append(nn.Sequential(
                SpectralNormConv2d(previous, channels, kernel, stride, padding, bias=False),
                nn.InstanceNorm2d(channels, affine=False),
                nn.LeakyReLU(0.2)))
        self.layers.append(nn.Sequential(nn.Conv2d(channels, 1, kernel, 1, padding)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input at full, half, quarter… resolution."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.discriminators = nn.ModuleList(PatchDiscriminator(config) for _ in range(config.num_d))

    def forward(self, segmap: torch.Tensor, image: torch.Tensor) -> Features:
        x = torch.cat([segmap, image], dim=1)
        features = []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            features.append(discriminator(x))
        return features


# -----------------------------------------------------------------------------
# Losses


def hinge_discriminator_loss(real: Features, fake: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of the hinge loss, each a mean over scales and patches:
    ``relu(1 - D(real))`` and ``relu(1 + D(fake))``; the loss is their sum."""
    real_term = torch.stack([F.relu(1 - r[-1]).mean() for r in real]).mean()
    fake_term = torch.stack([F.relu(1 + f[-1]).mean() for f in fake]).mean()
    return real_term, fake_term


def hinge_generator_loss(fake: Features) -> torch.Tensor:
    """Mean over scales of ``-D(fake)``."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def feature_matching_loss(real: Features, fake: Features) -> torch.Tensor:
    """L1 between real and fake intermediate features (score layers excluded), summed over
    layers and averaged over scales, as NVlabs computes it (their weight 10 is applied outside)."""
    total = fake[0][0].new_zeros(())
    for real_scale, fake_scale in zip(real, fake):
        for r, f in zip(real_scale[:-1], fake_scale[:-1]):
            total = total + F.l1_loss(f, r.detach())
    return total / len(fake)


# -----------------------------------------------------------------------------
# Initialisation


@torch.no_grad()
def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """NVlabs' ``init_type=xavier, init_variance=0.02``: Xavier-normal conv/linear weights with
    that gain and zero biases; affine norm weights ~ N(1, gain). Spectral-norm convs get the
    same on ``weight_orig`` (their scale is divided out by sigma anyway)."""
    for layer in module.modules():
        weight = getattr(layer, "weight_orig", None)
        if weight is None and isinstance(layer, (nn.Conv2d, nn.Linear)):
            weight = layer.weight
        if weight is not None:
            nn.init.xavier_normal_(weight, gain=gain)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._NormBase) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
