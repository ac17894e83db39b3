"""``--smooth window[:K]``: labels fused with the K frames before and after, along the motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import chain
from chain.bounds import MAX_WINDOW_RADIUS, Smoothing, parse_smoothing
from chain.errors import ChainError
from chain.stages.window import WindowSmoothedSegmenter
from tests.test_smoothing import PERSON, ColourSegmenter, moving_square, square_edges


def windowed(clip: np.ndarray, batch: int, radius: int = 2, glitches: tuple[int, ...] = ()) -> np.ndarray:
    """Labels as the chain makes them: each batch shown the ``radius`` frames after it first."""
    segmenter = WindowSmoothedSegmenter(ColourSegmenter(glitches), radius)
    labels = []
    for start in range(0, len(clip), batch):
        end = min(start + batch, len(clip))
        if end < len(clip):
            segmenter.look(clip[end:end + radius], indices=np.arange(end, min(end + radius, len(clip))))
        labels.append(segmenter.segment(clip[start:end], indices=np.arange(start, end)).numpy())
    return np.concatenate(labels)


def test_window_specs() -> None:
    assert parse_smoothing("window") == Smoothing("window", 0.0, 5)
    assert parse_smoothing("window:4") == Smoothing("window", 0.0, 4)
    for text in ("window:0", f"window:{MAX_WINDOW_RADIUS + 1}", "window:-1"):
        with pytest.raises(ChainError, match="window"):
            parse_smoothing(text)


def test_a_glitch_is_outvoted_and_a_moving_square_keeps_its_place() -> None:
    clip, lefts = moving_square()
    plain = ColourSegmenter(glitches=(5, 6)).segment(clip, indices=np.arange(len(clip))).numpy()
    assert (plain[5] == PERSON).sum() == 0  # the per-frame labels lose the person twice
    labels = windowed(clip, batch=4, glitches=(5, 6))
    for t in range(len(clip)):
        assert (labels[t] == PERSON).sum() > 0.9 * 20 * 20, t  # the glitch frames too
        left, right = square_edges(labels[t])
        assert abs(left - lefts[t]) <= 1 and abs(right - (lefts[t] + 19)) <= 1, t  # no trail either way


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_labels_do_not_depend_on_the_batch(batch: int) -> None:
    clip, _ = moving_square(12)
    assert np.array_equal(windowed(clip, batch, glitches=(4,)), windowed(clip, 16, glitches=(4,)))


def test_nothing_crosses_a_cut() -> None:
    before, _ = moving_square(8)
    after, _ = moving_square(8, background="bicycle", seed=1, x0=40)
    clip = np.concatenate([before, after])
    whole = windowed(clip, batch=4, glitches=(7, 8))
    assert np.array_equal(whole[:8], windowed(before, batch=4, glitches=(7,)))
    inner = WindowSmoothedSegmenter(ColourSegmenter(glitches=(0,)), 2)
    alone = inner.segment(after, indices=np.arange(8)).numpy()  # frame 8 of the clip is frame 0 here
    assert np.array_equal(whole[8], alone[0])


def test_only_the_window_is_kept() -> None:
    clip, _ = moving_square(16)
    segmenter = WindowSmoothedSegmenter(ColourSegmenter(), 2)
    for t in range(len(clip)):
        if t + 1 < len(clip):
            segmenter.look(clip[t + 1:t + 3], indices=np.arange(t + 1, min(t + 3, len(clip))))
        segmenter.probabilities(clip[t:t + 1], indices=np.array([t]))
        assert len(segmenter._seen) <= 2 * 2 + 2, t


@pytest.mark.parametrize("batch", [1, 4])
def test_window_through_the_chain(tmp_path: Path, batch: int) -> None:
    clip, lefts = moving_square(10)
    (tmp_path / "clip").mkdir()
    for index, frame in enumerate(clip):
        Image.fromarray(frame).save(tmp_path / "clip" / f"{index:03d}.png")
    summary = chain.run(tmp_path / "clip", seg="palette:voc", synth="none", smooth="window:2",
                        save_labels=tmp_path / "labels", batch_size=batch)
    assert "window ±2" in summary.segmenter and summary.frames == 10
    for t in (0, 5, 9):
        labels = np.asarray(Image.open(tmp_path / "labels" / f"{t:06d}.png"))
        assert abs(square_edges(labels)[0] - lefts[t]) <= 1, t
    one = sorted((tmp_path / "labels").glob("0*.png"))
    assert len(one) == 10
    assert torch.is_tensor(torch.zeros(1))
