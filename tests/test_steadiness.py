"""Steadiness along the input's motion (`chain.steadiness`): labels and paintings judged against
what motion explains, on a synthetic scene whose truth is known."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from chain.steadiness import SteadinessTracker, working_size

SIZE = (96, 128)  # (h, w)


def moving_square(frames: int = 12, step: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, H, W, 3)`` of a textured square sliding over a textured background, and its mask."""
    rng = np.random.default_rng(seed)
    height, width = SIZE
    background = np.repeat(rng.integers(0, 256, (height // 4, width // 4, 1), np.uint8), 4, 0).repeat(4, 1)
    square = np.repeat(rng.integers(0, 256, (8, 8, 1), np.uint8), 4, 0).repeat(4, 1)
    images, masks = [], []
    for t in range(frames):
        image = np.repeat(background, 3, axis=2).copy()
        mask = np.zeros(SIZE, np.int64)
        top, left = 32, 8 + step * t
        image[top:top + 32, left:left + 32] = square
        image[top:top + 32, left:left + 32, 0] //= 2  # a colour of its own
        mask[top:top + 32, left:left + 32] = 1
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def measured(frames: np.ndarray, labels: np.ndarray | None, painted: np.ndarray | None,
             batch: int = 4) -> SteadinessTracker:
    tracker = SteadinessTracker()
    for start in range(0, len(frames), batch):
        end = start + batch
        tracker.add_batch(frames[start:end], None if labels is None else labels[start:end],
                          None if painted is None else painted[start:end])
    return tracker


def test_labels_that_follow_the_motion_do_not_flicker_and_noisy_ones_do() -> None:
    frames, masks = moving_square()
    steady = measured(frames, masks, None)
    plain = float(np.mean(masks[1:] != masks[:-1]))
    assert plain > 0.01  # the square moves: plain frame-to-frame change punishes it
    assert steady.label_flicker < 0.3 * plain
    noisy = masks.copy()
    rng = np.random.default_rng(1)
    noisy[rng.random(noisy.shape) < 0.05] = 7
    assert measured(frames, noisy, None).label_flicker > 0.05


def test_a_painting_that_is_the_input_has_the_inputs_warping_error_and_a_noisy_one_more() -> None:
    frames, _ = moving_square()
    same = measured(frames, None, frames)
    assert same.painted_warp_error == pytest.approx(same.input_warp_error)
    noise = np.random.default_rng(2).integers(-30, 31, frames.shape)
    noisy = np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)
    assert measured(frames, None, noisy).painted_warp_error > 5 * same.input_warp_error
    # A painting at another size is judged at the same working size.
    small = frames[:, ::2, ::2]
    assert measured(frames, None, small).painted_warp_error < measured(frames, None, noisy).painted_warp_error


def test_batches_and_shards_give_one_passes_figures() -> None:
    frames, masks = moving_square(frames=10)
    noisy = np.clip(frames.astype(int) + np.random.default_rng(3).integers(-9, 10, frames.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    whole = measured(frames, masks, noisy, batch=1)
    eight = measured(frames, masks, noisy, batch=8)
    assert whole.to_dict() == eight.to_dict()
    first, second = measured(frames[:6], masks[:6], noisy[:6]), measured(frames[6:], masks[6:], noisy[6:])
    first = pickle.loads(pickle.dumps(first))  # shards' trackers travel through Ray
    first.join(pickle.loads(pickle.dumps(second)))
    assert first.pairs == whole.pairs == 9
    for key in ("label_flicker", "painted_warp_error", "input_warp_error"):
        assert getattr(first, key) == pytest.approx(getattr(whole, key), rel=1e-6), key


def test_a_cut_is_skipped() -> None:
    frames, masks = moving_square(frames=6)
    other, other_masks = moving_square(frames=6, seed=5)
    other = 255 - other  # another scene altogether
    tracker = measured(np.concatenate([frames, other]), np.concatenate([masks, other_masks]), None)
    assert tracker.cuts == 1 and tracker.pairs == 10


def test_one_frame_measures_nothing_and_the_working_size_never_enlarges() -> None:
    frames, masks = moving_square(frames=1)
    assert measured(frames, masks, frames).to_dict() is None
    assert working_size(720, 1280) == (256, 455) and working_size(144, 176) == (144, 176)


def test_every_run_summary_carries_steadiness(tmp_path, monkeypatch) -> None:
    from chain.entry import main
    from tests.bad_inputs import make_video

    make_video(tmp_path / "in.mp4", size=(64, 48))
    monkeypatch.chdir(tmp_path)
    main(["run", "in.mp4", "out.mp4", "--seg", "palette:voc", "--synth", "colorize", "--summary", "run.json", "-q",
          "--max-frames", "4"])
    import json

    steadiness = json.loads((tmp_path / "run.json").read_text())["run"]["steadiness"]
    assert steadiness["size"] == "64x48" and steadiness["pairs"] + steadiness["cuts"] == 3
    assert steadiness["input_warp_error"] is not None


def test_a_second_flow_judges_alike() -> None:
    """benchmarks/steadiness.py judges chain with Farneback's flow, which chain does not use."""
    frames, masks = moving_square()
    tracker = SteadinessTracker(flow="farneback")
    tracker.add_batch(frames, masks, frames)
    plain = float(np.mean(masks[1:] != masks[:-1]))
    assert tracker.pairs == 11 and tracker.label_flicker < 0.3 * plain
    assert tracker.painted_warp_error == pytest.approx(tracker.input_warp_error)
