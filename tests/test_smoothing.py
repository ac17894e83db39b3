"""Temporal smoothing and the flicker figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import chain
from chain.errors import ChainError
from chain.labels import VOC
from chain.stages.smoothing import parse_smoothing


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


@pytest.mark.parametrize("text", ["ema", "ema:1.5", "window:3", "ema:x"])
def test_bad_smoothing_specs(text: str) -> None:
    with pytest.raises(ChainError, match="ema:ALPHA"):
        parse_smoothing(text)
