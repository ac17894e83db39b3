"""The ``palette`` segmenter as it was before it became a colour lookup: the reference its lookup is
tested against (tests/test_palette_lookup.py) and timed against (benchmarks/palette_speed.py)."""

from __future__ import annotations

import numpy as np
import torch


def per_pixel_search(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The segmenter before it was a lookup: float64 distances of every pixel, argmin (ties: lower id),
    in chunks of pixels (benchmarks/palette_speed.py times it at 720p)."""
    pixels = torch.from_numpy(frames.reshape(-1, 3))
    colours = torch.from_numpy(palette.astype(np.float64))
    norms = (colours ** 2).sum(dim=1)
    labels = torch.empty(pixels.shape[0], dtype=torch.int64)
    for start in range(0, pixels.shape[0], 1 << 17):
        chunk = pixels[start:start + (1 << 17)].double()
        labels[start:start + (1 << 17)] = (norms - 2 * chunk @ colours.T).argmin(dim=1)
    return labels.numpy().reshape(frames.shape[:3])
