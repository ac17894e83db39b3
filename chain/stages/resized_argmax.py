"""Argmax of bilinearly resized class scores, computed only where the answer is in doubt.

A segmenter's labels are ``argmax_c resize(scores)[c]``: class maps resized (bilinear, as
``F.interpolate``, possibly more than once: deeplab-mnv2 resizes its 33x33 logits to 257x257
and chain resizes those to the frame) and the best class taken per pixel. Resizing every class
map costs ``C x H x W`` (21 maps at 720p: 94 ms of CPU per frame, ten times the deeplab-mnv2
network; this takes 4 ms on real frames). But a bilinear output pixel is a convex combination of its 2x2 source
pixels, and if all four have the same best class ``c``, then ``c`` wins their combination too
(``sum w_i s_i[c] >= sum w_i s_i[k]`` for every ``k``). So each resize takes the labels of the
level before wherever a source cell's corners agree, and interpolates scores only for pixels
in cells that straddle a class boundary, recursively from the original scores and only at the
source pixels those need. Near-ties may round differently from a full resize (tests compare).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

#: One resize: the output ``(height, width)`` and ``F.interpolate``'s ``align_corners``.
Resize = tuple[tuple[int, int], bool]
#: Class scores ``(N, C)`` at the pixels ``(batch, row, column)`` of one level.
_Values = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _axis(size_in: int, size_out: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two source indices and their weights (``F.interpolate``'s bilinear rule)."""
    index = np.arange(size_out, dtype=np.float32)
    if align_corners:
        source = index * np.float32((size_in - 1) / (size_out - 1) if size_out > 1 else 0)
    else:
        source = np.maximum((index + np.float32(0.5)) * np.float32(size_in / size_out) - np.float32(0.5), 0)
    first = np.minimum(source.astype(np.intp), size_in - 1)  # floor: source >= 0
    second = np.minimum(first + 1, size_in - 1)
    weight = (source - first).astype(np.float32)
    return first, second, 1 - weight, weight


def resize_matrix(resizes: Sequence[Resize], axis: int, size_in: int) -> np.ndarray:
    """The ``resizes`` in turn along one ``axis`` (0: rows, 1: columns) of ``size_in`` values, as one
    ``(size_out, size_in)`` matrix (float64): bilinear resizing is separable and linear, so a chain
    of them is one matrix product per axis (as `F.interpolate` up to float rounding)."""
    matrix = np.eye(size_in)
    for size, align_corners in resizes:
        first, second, first_weight, second_weight = _axis(matrix.shape[0], size[axis], align_corners)
        step = np.zeros((size[axis], matrix.shape[0]))
        np.add.at(step, (np.arange(size[axis]), first), first_weight)
        np.add.at(step, (np.arange(size[axis]), second), second_weight)
        matrix = step @ matrix
    return matrix


def _disputed_cells(labels: np.ndarray) -> np.ndarray:
    """Per source pixel: whether the 2x2 cell it starts has corners of different labels (edges replicated)."""
    edged = np.pad(labels, ((0, 0), (0, 1), (0, 1)), mode="edge")
    corner = edged[:, :-1, :-1]
    return (corner != edged[:, 1:, :-1]) | (corner != edged[:, :-1, 1:]) | (corner != edged[:, 1:, 1:])


def _ranges(first: np.ndarray, size_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Per source index: where the output indices whose first source it is start, and how many there are
    (``first`` never decreases)."""
    starts = np.searchsorted(first, np.arange(size_in))
    return starts, np.diff(starts, append=len(first))


def _block_pixels(rows: np.ndarray, columns: np.ndarray, row_ranges: tuple[np.ndarray, np.ndarray],
                  column_ranges: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The output pixels of the source cells ``(rows, columns)``: for each, the cell's position in the
    list, the pixel's row and column (the cells' blocks of output pixels, concatenated)."""
    height = row_ranges[1][rows]
    width = column_ranges[1][columns]
    counts = height * width
    cell = np.repeat(np.arange(len(rows)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    across = width[cell]
    return cell, row_ranges[0][rows][cell] + offset // across, column_ranges[0][columns][cell] + offset % across


def resized_argmax(scores: torch.Tensor | np.ndarray, resizes: Sequence[Resize]) -> np.ndarray:
    """The argmax over classes of ``(B, C, h, w)`` CPU ``scores`` after the bilinear ``resizes`` in turn.

    Returns ``(B, H, W)`` class indices (uint8 up to 256 classes, else int32).
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().float().cpu().numpy()
    labels = scores.argmax(axis=1).astype(np.uint8 if scores.shape[1] <= 256 else np.int32)

    def values(batch: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
        return scores[batch, :, row, column]

    shape = scores.shape[-2:]
    for size, align_corners in resizes:
        if tuple(size) == tuple(shape):
            continue
        rows = _axis(shape[0], size[0], align_corners)
        columns = _axis(shape[1], size[1], align_corners)
        y0, y1, wy0, wy1 = rows
        x0, x1, wx0, wx1 = columns
        row_ranges, column_ranges = _ranges(y0, shape[0]), _ranges(x0, shape[1])
        disputed = _disputed_cells(labels)
        disputed &= (row_ranges[1] > 0)[None, :, None] & (column_ranges[1] > 0)[None, None, :]  # cells some pixel uses
        batch, row, column = np.nonzero(disputed)
        labels = labels[:, y0][:, :, x0]
        if len(batch):
            # A cell's corners are the same for all its pixels: gather them once per cell.
            second_row, second_column = np.minimum(row + 1, shape[0] - 1), np.minimum(column + 1, shape[1] - 1)
            corners = [values(batch, r, c) for r, c in
                       ((row, column), (row, second_column), (second_row, column), (second_row, second_column))]
            cell, out_row, out_column = _block_pixels(row, column, row_ranges, column_ranges)
            mixed = _mix([corner[cell] for corner in corners], wy0[out_row], wy1[out_row], wx0[out_column],
                         wx1[out_column])
            labels[batch[cell], out_row, out_column] = mixed.argmax(axis=1)
        values = _resized_values(values, rows, columns)
        shape = tuple(size)
    return labels


def _mix(corners: list[np.ndarray], wy0: np.ndarray, wy1: np.ndarray, wx0: np.ndarray, wx1: np.ndarray) -> np.ndarray:
    """Bilinear mix of the 2x2 corner scores, in ``F.interpolate``'s order (rows outside, columns inside)."""
    top0, top1, bottom0, bottom1 = corners
    a0, a1 = wx0[:, None], wx1[:, None]
    return wy0[:, None] * (a0 * top0 + a1 * top1) + wy1[:, None] * (a0 * bottom0 + a1 * bottom1)


def _resized_values(values: _Values, rows: tuple[np.ndarray, ...], columns: tuple[np.ndarray, ...]) -> _Values:
    """Scores at pixels of the resized level, from ``values`` of the level before."""
    y0, y1, wy0, wy1 = rows
    x0, x1, wx0, wx1 = columns

    def resized(batch: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
        corners = [values(batch, ys[row], xs[column]) for ys, xs in ((y0, x0), (y0, x1), (y1, x0), (y1, x1))]
        return _mix(corners, wy0[row], wy1[row], wx0[column], wx1[column])

    return resized
