"""Random changes to training frames that keep them pictures: mirrored, zoomed in, recoloured.

A few short clips show an autoencoder a few hundred nearly identical frames; it learns those frames,
not pictures, and an unseen film comes out as the training film. Showing each frame mirrored, from
a slightly different crop and in slightly different colours asks the encoder for what pictures
have in common. Every change is a pure function of ``(seed, step)``, so ``--resume`` stays exact.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

#: The crop keeps at least this share of the frame's width and height.
SMALLEST_CROP = 0.6
#: Brightness, contrast and saturation factors within 1 ± this; hue turned by up to ± ``HUE``.
#: Measured on four shared clips reconstructing an unseen fifth (docs/results/vaegan_cpu.json): these
#: strong changes gave 16.88 dB where 80 % crops, ± 0.2 and ± 0.05 gave 15.85 (its mean frame: 16.32).
COLOUR = 0.4
HUE = 0.15


def augmented(frames: torch.Tensor, *, seed: int, step: int) -> torch.Tensor:
    """``frames`` ``(B, 3, H, W)`` in [0, 1], each mirrored half the time, cropped to between 60 % and
    100 % of its sides (scaled back up, antialiased), and jittered in brightness, contrast, saturation and hue."""
    draws = np.random.default_rng([seed, step, 0xA06]).random((len(frames), 8))
    height, width = frames.shape[-2:]
    out = []
    for frame, (flip, scale, top, left, bright, contrast, saturation, hue) in zip(frames, draws):
        if flip < 0.5:
            frame = TF.horizontal_flip(frame)
        side = 1 - (1 - SMALLEST_CROP) * scale
        crop_h, crop_w = max(1, round(height * side)), max(1, round(width * side))
        frame = TF.resized_crop(frame, round((height - crop_h) * top), round((width - crop_w) * left),
                                crop_h, crop_w, [height, width], antialias=True)
        frame = TF.adjust_brightness(frame, 1 + COLOUR * (2 * bright - 1))
        frame = TF.adjust_contrast(frame, 1 + COLOUR * (2 * contrast - 1))
        frame = TF.adjust_saturation(frame, 1 + COLOUR * (2 * saturation - 1))
        out.append(TF.adjust_hue(frame, HUE * (2 * hue - 1)).clamp(0, 1))
    return torch.stack(out)
