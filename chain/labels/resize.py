"""Nearest-neighbour resizing of label maps: the one rule every stage and dataset samples by.

Output pixel ``i`` of ``n_out`` takes input pixel ``floor((i + 0.5) * n_in / n_out)``: the input
pixel under the output pixel's centre (torch's ``nearest-exact``, PIL's ``NEAREST``), computed in
integers, ``((2i + 1) * n_in) // (2 * n_out)``, so no float rounding moves a sample at a
boundary. Ids are never blended, and a map resized to its own size is returned unchanged.

Kept out of ``chain.labels``' namespace so that importing label spaces does not import torch.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Labels = TypeVar("Labels", np.ndarray, torch.Tensor)


def centre_samples(n_in: int, n_out: int) -> np.ndarray:
    """The input index each of ``n_out`` output pixels samples, ``(n_out,)`` int64."""
    return (2 * np.arange(n_out, dtype=np.int64) + 1) * n_in // (2 * n_out)


def resize_labels(labels: Labels, size: tuple[int, int]) -> Labels:
    """``labels`` ``(B, H, W, ...)`` resized to ``size`` ``(h, w)`` by the pixel-centre rule.

    Takes a torch tensor (resized on its device, dtype kept) or a numpy array (returned as one);
    trailing dimensions after ``W`` (an RGB frame's channels) are carried along.
    """
    height, width = labels.shape[1:3]
    if (height, width) == tuple(size):
        return labels
    rows, cols = centre_samples(height, size[0]), centre_samples(width, size[1])
    if isinstance(labels, torch.Tensor):
        rows_t = torch.from_numpy(rows).to(labels.device)
        cols_t = torch.from_numpy(cols).to(labels.device)
        return labels.index_select(1, rows_t).index_select(2, cols_t)
    return labels[:, rows][:, :, cols]
