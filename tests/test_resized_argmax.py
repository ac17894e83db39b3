"""`resized_argmax` gives the labels of a full bilinear resize while resizing only near class boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chain.labels import get_label_space
from chain.stages.base import LABEL_DTYPE, labels_from_scores
from chain.stages.resized_argmax import resize_matrix, resized_argmax


def _smooth_scores(batch: int, classes: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Class scores with regions (upsampled noise), as a segmenter's logits look."""
    rough = torch.from_numpy(np.random.default_rng(seed).normal(size=(batch, classes, 5, 6)).astype(np.float32))
    return F.interpolate(rough, size=size, mode="bicubic", align_corners=False) * 4


def _full(scores: torch.Tensor, resizes: list[tuple[tuple[int, int], bool]]) -> np.ndarray:
    for size, align_corners in resizes:
        scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=align_corners)
    return scores.argmax(dim=1).numpy()


@pytest.mark.parametrize("resizes", [
    [((90, 160), False)],                      # upsampling, aspect changed
    [((13, 7), False)],                        # downsampling
    [((57, 57), True), ((40, 70), False)],     # deeplab-mnv2: features to input size, then to the frame
    [((57, 57), True), ((120, 96), False)],
])
def test_labels_match_a_full_resize(resizes: list[tuple[tuple[int, int], bool]]) -> None:
    scores = _smooth_scores(2, 21, (17, 23))
    labels = resized_argmax(scores, resizes)
    expected = _full(scores, resizes)
    assert labels.shape == expected.shape
    assert len(np.unique(expected)) >= 4  # boundaries exist: the shortcut alone would not do
    assert (labels == expected).mean() >= 0.9999


def test_more_classes_than_a_byte_holds() -> None:
    scores = _smooth_scores(1, 300, (9, 9), seed=1)
    labels = resized_argmax(scores, [((31, 29), False)])
    assert labels.dtype == np.int32
    assert (labels == _full(scores, [((31, 29), False)])).mean() >= 0.9999


def test_labels_from_scores_on_the_cpu_uses_it_and_returns_label_tensors() -> None:
    space = get_label_space("voc")
    scores = _smooth_scores(1, len(space), (33, 33), seed=2)
    labels = labels_from_scores(scores, (100, 75))
    assert labels.dtype == LABEL_DTYPE and labels.shape == (1, 100, 75)
    assert (labels.numpy() == _full(scores, [((100, 75), False)])).mean() >= 0.9999


@pytest.mark.parametrize("resizes", [
    [((57, 57), True), ((40, 70), False)],     # both of deeplab-mnv2's resizes: enlarging, then shrinking
    [((57, 57), True), ((120, 96), False)],
    [((13, 7), False)],
])
def test_a_chain_of_resizes_is_one_matrix_per_axis(resizes: list[tuple[tuple[int, int], bool]]) -> None:
    scores = _smooth_scores(2, 5, (17, 23), seed=3)
    rows, columns = (torch.from_numpy(resize_matrix(resizes, axis, size).astype(np.float32))
                     for axis, size in ((0, 17), (1, 23)))
    expected = scores
    for size, align_corners in resizes:
        expected = F.interpolate(expected, size=size, mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(rows @ scores @ columns.T, expected, atol=1e-4, rtol=1e-5)
