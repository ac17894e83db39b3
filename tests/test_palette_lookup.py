"""The ``palette`` segmenter as a colour lookup gives exactly the labels of the per-pixel search."""

from __future__ import annotations

import numpy as np
import pytest

from chain.labels import get_label_space
from chain.stages.base import LABEL_DTYPE
from chain.stages.lookup import PaletteSegmenter
from support.palette import per_pixel_search


@pytest.mark.parametrize("space_name", ["voc", "coco-stuff", "ade20k"])
def test_lookup_equals_the_per_pixel_search(space_name: str) -> None:
    space = get_label_space(space_name)
    rng = np.random.default_rng(7)
    segmenter = PaletteSegmenter(space)
    random = rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    painted = space.palette[rng.integers(0, len(space), (2, 48, 64))]
    noisy = np.clip(painted.astype(int) + rng.integers(-12, 13, painted.shape), 0, 255).astype(np.uint8)
    for frames in (random, painted, noisy, random):  # the last: every colour answered from the table
        labels = segmenter.segment(frames, indices=np.arange(len(frames)))
        assert labels.dtype == LABEL_DTYPE and labels.shape == frames.shape[:3]
        labels = labels.numpy()
        assert np.array_equal(labels, per_pixel_search(frames, space.palette))
    # Painted from the palette, a frame maps back to its labels (one colour per class).
    ids = rng.integers(0, len(space), (1, 16, 16))
    assert np.array_equal(segmenter.segment(space.palette[ids], indices=np.arange(1)).numpy(), ids)


def test_ties_go_to_the_lower_id() -> None:
    space = get_label_space("voc")
    palette = space.palette.astype(int)
    ties = []
    for low in range(len(space)):
        for high in range(low + 1, len(space)):
            middle = palette[low] + palette[high]
            if (middle % 2 == 0).all():  # a colour exactly halfway between two class colours
                ties.append((low, high, (middle // 2).astype(np.uint8)))
    assert ties, "VOC's palette has colours exactly halfway between two classes"
    frames = np.stack([colour for _, _, colour in ties])[None, None]
    labels = PaletteSegmenter(space).segment(frames, indices=np.arange(1))[0, 0]
    assert np.array_equal(labels, per_pixel_search(frames, space.palette)[0, 0])
    # Exact integer distances: np.argmin takes the first minimum, the lower id.
    distances = [((palette - colour.astype(int)) ** 2).sum(axis=1) for _, _, colour in ties]
    assert labels.tolist() == [int(np.argmin(d)) for d in distances]
    decided_by_tie = [i for i, (low, high, _) in enumerate(ties) if distances[i].min() == distances[i][high]]
    assert decided_by_tie and all(labels[i] == ties[i][0] or distances[i].argmin() < ties[i][0]
                                  for i in decided_by_tie)


def test_several_sizes_at_once_equal_each_size_alone() -> None:
    space = get_label_space("voc")
    frames = space.palette[np.arange(9).reshape(1, 3, 3)]  # a 3x3 frame of 9 classes
    segmenter = PaletteSegmenter(space)
    # Without the frame size among them, sampling the 4x4 labels to 2x2 is not sampling the frame to 2x2.
    for sizes in ([(4, 4), (3, 3)], [(3, 3), (5, 5), (1, 1)], [(4, 4), (2, 2)]):
        together = segmenter.segment_sizes(frames, indices=np.arange(1), sizes=sizes)
        for size, labels in zip(sizes, together):
            assert np.array_equal(labels.numpy(), segmenter.segment(frames, indices=np.arange(1), size=size).numpy())
