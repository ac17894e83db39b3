"""Cheap refusals before expensive work (issue 29): what can be known from headers, folders and the
stage descriptions is refused before a frame is decoded or a network is built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import chain.api
from chain.labels import VOC
from chain.media.source import FrameSource
from tests.test_cli import assert_one_line_error, chain_cli


@pytest.fixture
def nothing_expensive(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records (and stops) any frame decoding or chain building; a refusal must come before both."""
    happened: list[str] = []

    def decoding(self: FrameSource):
        happened.append("decoded a frame")
        raise AssertionError("a frame was decoded before the refusal")

    def building(*args, **kwargs):
        happened.append("built the chain")
        raise AssertionError("the chain was built before the refusal")

    monkeypatch.setattr(FrameSource, "__iter__", decoding)
    monkeypatch.setattr(chain.api, "build_chain", building)
    return happened


def test_an_image_output_for_many_frames_is_refused_before_any_decoding(
        carphone: Path, tmp_path: Path, nothing_expensive: list[str]) -> None:
    result = chain_cli("run", str(carphone), "--compare", str(tmp_path / "x.png"), "--max-frames", "10")
    assert_one_line_error(result, "x.png is an image file", "10 frames", "--max-frames 1")
    assert nothing_expensive == [] and result.returncode == 2


def test_spade_without_weights_is_refused_before_any_decoding_and_names_chain_train_spade(
        carphone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nothing_expensive: list[str]) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    result = chain_cli("run", str(carphone), str(tmp_path / "out.mp4"), "--seg", "palette:voc", "--synth", "spade")
    assert_one_line_error(result, "synthesizer 'spade'", str(tmp_path / "weights" / "spade" / "coco_pretrained"),
                          "chain train spade", "--synth-weights", "synthesizers usable here: colorize")
    assert nothing_expensive == [] and result.returncode == 3
    assert not (tmp_path / "out.mp4").exists()


def test_missing_imported_segmenter_is_refused_before_any_decoding(
        carphone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nothing_expensive: list[str]) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    result = chain_cli("run", str(carphone), str(tmp_path / "out.mp4"))  # the defaults: deeplab-mnv2:voc
    assert_one_line_error(result, "segmenter 'deeplab-mnv2:voc'", "chain import tflite")
    assert nothing_expensive == []


def save_label_maps(folder: Path, count: int) -> None:
    folder.mkdir()
    (folder / "labels.json").write_text('{"label_space": "voc"}')
    for index in range(count):
        Image.fromarray(np.full((144, 176), VOC.id_of("person"), np.uint8)).save(folder / f"{index:06d}.png")


def test_a_saved_labels_folder_shorter_than_the_input_is_refused_before_any_decoding(
        carphone: Path, tmp_path: Path, nothing_expensive: list[str]) -> None:
    save_label_maps(tmp_path / "maps", 59)
    result = chain_cli("run", str(carphone), str(tmp_path / "out.mp4"), "--seg", f"labels:{tmp_path / 'maps'}",
                       "--synth", "colorize")
    assert_one_line_error(result, f"labels:{tmp_path / 'maps'}", "frames 0-58", "000059.png", "120 frames",
                          "--max-frames 59")
    assert nothing_expensive == []


def test_a_saved_labels_folder_long_enough_for_the_trimmed_input_runs(carphone: Path, tmp_path: Path) -> None:
    save_label_maps(tmp_path / "maps", 59)
    result = chain_cli("run", str(carphone), str(tmp_path / "out.mp4"), "--seg", f"labels:{tmp_path / 'maps'}",
                       "--synth", "colorize", "--max-frames", "59", "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.mp4").is_file()
