"""Temporal smoothing and the flicker figure."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import chain
from chain.bounds import DEFAULT_FLOW_ALPHA, Smoothing, parse_smoothing
from chain.errors import ChainError
from chain.labels import VOC
from chain.media import Trim, open_source
from chain.stages.base import Segmenter, labels_from_scores
from chain.stages.flow import MotionEstimator, gray_at
from chain.stages.smoothing import SmoothedSegmenter, Smoother


def write_clip(folder: Path, maps: list[np.ndarray]) -> None:
    folder.mkdir()
    for index, labels in enumerate(maps):
        Image.fromarray(VOC.colorize(labels)).save(folder / f"{index:03d}.png")


def glitchy_maps() -> list[np.ndarray]:
    """A person on background; in frame 3 the background flickers to 'cow' for one frame."""
    steady = np.zeros((32, 48), dtype=np.uint8)
    steady[8:24, 16:32] = VOC.id_of("person")
    maps = [steady.copy() for _ in range(8)]
    maps[3][steady == 0] = VOC.id_of("cow")
    return maps


def test_ema_removes_a_one_frame_glitch_and_lowers_flicker(tmp_path: Path) -> None:
    maps = glitchy_maps()
    write_clip(tmp_path / "clip", maps)
    raw = chain.run(tmp_path / "clip", seg="palette:voc", synth="none", save_labels=tmp_path / "raw",
                    summary=tmp_path / "raw.json")
    smooth = chain.run(tmp_path / "clip", seg="palette:voc", synth="none", smooth="ema:0.7",
                       save_labels=tmp_path / "smooth", batch_size=3)
    glitch = np.asarray(Image.open(tmp_path / "smooth" / "000003.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "raw" / "000003.png")), maps[3])
    assert np.array_equal(glitch, maps[0])  # the one-frame cow is gone
    # Raw: the background flips to cow and back, 2 changes over 7 frame pairs.
    background_share = float(np.mean(maps[0] == 0))
    assert raw.label_flicker == pytest.approx(2 * background_share / 7)
    assert smooth.label_flicker == 0
    per_frame = json.loads((tmp_path / "raw.json").read_text())["per_frame"]
    assert per_frame[0]["flicker"] is None and per_frame[3]["flicker"] == pytest.approx(background_share, abs=1e-4)


def test_smoothing_state_starts_afresh_each_run(tmp_path: Path) -> None:
    maps = glitchy_maps()
    write_clip(tmp_path / "clip", maps[3:])  # starts on the glitch frame
    pipeline = chain.build_chain(seg="palette:voc", synth="colorize", smooth="ema:0.9")
    for name in ("a", "b"):
        pipeline(tmp_path / "clip", chain.Outputs(labels=tmp_path / name))
        assert np.array_equal(np.asarray(Image.open(tmp_path / name / "000000.png")), maps[3])


@pytest.mark.parametrize("text", ["ema", "ema:1.5", "windows:3", "ema:x"])
def test_bad_smoothing_specs(text: str) -> None:
    with pytest.raises(ChainError, match="ema:ALPHA"):
        parse_smoothing(text)


# --- motion-compensated smoothing (--smooth flow) -------------------------------------------

PERSON = VOC.id_of("person")
HEIGHT, WIDTH, SIDE, SPEED = 64, 96, 20, 2  # a 20-pixel square moving 2 pixels a frame


class ColourSegmenter(Segmenter):
    """Soft probabilities from each pixel's distance to the VOC palette colours, at full size.

    At the frame indices in ``glitches`` it mistakes people for cows (60 % cow, 40 % person).
    """

    label_space = VOC

    def __init__(self, glitches: tuple[int, ...] = ()) -> None:
        self.glitches = glitches

    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(frames).float().reshape(-1, 3)
        distances = torch.cdist(pixels, torch.from_numpy(np.array(VOC.palette, dtype=np.float32)))
        probabilities = (-distances / 10).softmax(-1).reshape(*frames.shape[:3], -1).permute(0, 3, 1, 2)
        for i, index in enumerate(indices):
            if index in self.glitches:
                person = probabilities[i, PERSON].clone()
                probabilities[i, PERSON] = 0.4 * person
                probabilities[i, VOC.id_of("cow")] += 0.6 * person
        return probabilities

    def segment(self, frames: np.ndarray, *, indices: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        return labels_from_scores(self.probabilities(frames, indices=indices), size or frames.shape[1:3])


def texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth noise, ±25 grey levels at most: enough for optical flow, too little to change a label."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 1.5)
    return np.clip(noise / noise.std() * 10, -25, 25)


def moving_square(frames: int = 16, *, background: str = "background", seed: int = 0, x0: int = 10,
                  visible: bool = True) -> tuple[np.ndarray, list[int]]:
    """A textured person-coloured square sliding right over a still textured background."""
    rng = np.random.default_rng(seed)
    ground = np.asarray(VOC.palette[VOC.id_of(background)], np.float32) + texture(rng, (HEIGHT, WIDTH))[..., None]
    square = np.asarray(VOC.palette[PERSON], np.float32) + texture(rng, (SIDE, SIDE))[..., None]
    clip, lefts = [], []
    for t in range(frames):
        frame = ground.copy()
        left = x0 + SPEED * t
        if visible:
            frame[22:22 + SIDE, left:left + SIDE] = square
        clip.append(np.clip(frame, 0, 255).astype(np.uint8))
        lefts.append(left)
    return np.stack(clip), lefts


def square_edges(labels: np.ndarray) -> tuple[int, int]:
    """First and last column labelled person."""
    columns = np.nonzero((labels == PERSON).any(axis=0))[0]
    return int(columns[0]), int(columns[-1])


def smoothed_labels(spec: str, clip: np.ndarray, batch: int,
                    glitches: tuple[int, ...] = ()) -> tuple[np.ndarray, SmoothedSegmenter]:
    segmenter = SmoothedSegmenter(ColourSegmenter(glitches), parse_smoothing(spec))
    labels = [segmenter.segment(clip[i:i + batch], indices=np.arange(i, min(i + batch, len(clip))))
              for i in range(0, len(clip), batch)]
    return np.concatenate(labels), segmenter


def test_flow_keeps_a_moving_edge_where_ema_smears_it() -> None:
    clip, lefts = moving_square()
    truth = [(x, x + SIDE - 1) for x in lefts]
    glitch = 10  # the segmenter calls the square a cow in this frame
    per_frame = ColourSegmenter((glitch,)).segment(clip, indices=np.arange(len(clip))).numpy()
    assert [square_edges(labels) for i, labels in enumerate(per_frame) if i != glitch] == truth[:glitch] + truth[11:]
    assert not (per_frame[glitch] == PERSON).any()
    flow, segmenter = smoothed_labels("flow", clip, batch=1, glitches=(glitch,))
    ema, _ = smoothed_labels("ema:0.8", clip, batch=1, glitches=(glitch,))
    flow_errors = np.abs([np.subtract(square_edges(labels), edges) for labels, edges in zip(flow, truth)])
    ema_errors = np.abs([np.subtract(square_edges(labels), edges) for labels, edges in zip(ema, truth)])
    assert flow_errors.max() <= 1
    assert ema_errors.max() >= 4  # the average lags several frames behind the square
    # The running probabilities moved with the square, so they outvote the one-frame glitch.
    assert not (flow[glitch] == VOC.id_of("cow")).any()
    assert segmenter.smoother.cuts == []


def test_flow_falls_back_to_the_current_frame_where_new_content_appears() -> None:
    background, _ = moving_square(8, visible=False)
    square, lefts = moving_square(8, x0=30)
    clip = np.concatenate([background[:5], square[5:]])  # it appears in frame 5 (a small change, no cut)
    flow, segmenter = smoothed_labels("flow:0.9", clip, batch=3)
    ema, _ = smoothed_labels("ema:0.9", clip, batch=3)
    assert segmenter.smoother.cuts == []
    for t in range(5, 8):  # no flow leads there from the past: the current frame decides at once
        assert np.abs(np.subtract(square_edges(flow[t]), (lefts[t], lefts[t] + SIDE - 1))).max() <= 1
    assert not (ema[5] == PERSON).any()


def test_flow_results_do_not_depend_on_the_batch() -> None:
    clip, _ = moving_square()
    one, _ = smoothed_labels("flow", clip, batch=1)
    eight, _ = smoothed_labels("flow", clip, batch=8)
    assert np.array_equal(one, eight)
    a = SmoothedSegmenter(ColourSegmenter(), parse_smoothing("flow:0.7"))
    b = SmoothedSegmenter(ColourSegmenter(), parse_smoothing("flow:0.7"))
    singles = torch.cat([a.probabilities(clip[i:i + 1], indices=np.array([i])) for i in range(len(clip))])
    assert torch.equal(singles, torch.cat([b.probabilities(clip[i:i + 8], indices=np.arange(i, i + 8))
                                           for i in (0, 8)]))


def test_a_hard_cut_resets_the_flow_state() -> None:
    before, _ = moving_square(8)
    after, _ = moving_square(8, background="bicycle", seed=1, x0=40)  # another shot: green ground
    clip = np.concatenate([before, after])
    inner = ColourSegmenter().probabilities(clip, indices=np.arange(16))
    segmenter = SmoothedSegmenter(ColourSegmenter(), parse_smoothing("flow"))
    smoothed = segmenter.probabilities(clip, indices=np.arange(16))
    assert segmenter.smoother.cuts == [8]
    assert torch.equal(smoothed[8], inner[8])  # nothing carried over the cut
    assert not torch.equal(smoothed[7], inner[7])
    # Without the cut test, the old shot would leak into the new one where the flow looks plausible.
    blind = Smoother(parse_smoothing("flow"), MotionEstimator(cut_histogram=1.0, cut_unreliable=1.0))
    leaked = [blind.step(frame, probabilities).clone() for frame, probabilities in zip(clip, inner)]
    assert blind.cuts == [] and not torch.equal(leaked[8], inner[8])
    # reset() forgets the state and the cuts: the next frame starts afresh.
    segmenter.reset()
    assert segmenter.smoother.cuts == []
    assert torch.equal(segmenter.probabilities(clip[9:10], indices=np.array([9]))[0], inner[9])


def test_flow_finds_the_cuts_between_real_clips(carphone: Path, bunny: Path) -> None:
    clips = []
    for path in (carphone, bunny):
        with open_source(path, trim=Trim(max_frames=6), size="120") as source:
            clips.append([gray_at(frame.rgb, (96, 96)) for frame in source])
    estimator = MotionEstimator()
    sequence = clips[0] + clips[1] + clips[0][:1]
    cuts = [t for t in range(1, len(sequence)) if estimator.compare(sequence[t - 1], sequence[t]).cut]
    assert cuts == [6, 12]


def test_flow_through_the_chain(tmp_path: Path) -> None:
    clip, lefts = moving_square(6)
    (tmp_path / "clip").mkdir()
    for index, frame in enumerate(clip):
        Image.fromarray(frame).save(tmp_path / "clip" / f"{index:03d}.png")
    summary = chain.run(tmp_path / "clip", seg="palette:voc", synth="none", smooth="flow:0.7",
                        save_labels=tmp_path / "labels", batch_size=4)
    assert "smoothed (flow 0.7)" in summary.segmenter
    last = np.asarray(Image.open(tmp_path / "labels" / "000005.png"))
    assert abs(square_edges(last)[0] - lefts[5]) <= 1


def test_smoothing_specs() -> None:
    assert parse_smoothing("flow") == Smoothing("flow", DEFAULT_FLOW_ALPHA)
    assert parse_smoothing("flow:0.7") == Smoothing("flow", 0.7)
    assert parse_smoothing("ema:0.6") == Smoothing("ema", 0.6)
    assert parse_smoothing("ema:0") is None and parse_smoothing("none") is None
    with pytest.raises(ChainError, match="flow"):
        parse_smoothing("flow:1")
