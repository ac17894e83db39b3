"""The ``deeplab-mnv2`` segmenters in the chain, on real footage, with the imported TF Lite weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chain
from chain.errors import MissingWeightsError
from chain.stages import StageContext, build_stage
from tests.conftest import shared_file


@pytest.mark.slow
def test_import_command_writes_a_checkpoint_the_chain_finds(tmp_path: Path) -> None:
    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    result = subprocess.run([sys.executable, "-m", "chain", "import", "tflite", str(tflite), "--labels", "voc",
                             "--out", str(tmp_path / "deeplab-mnv2-voc")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "deeplab-mnv2-voc" / "config.json").read_text())["meta"]
    assert meta["label_space"] == "voc" and meta["input_size"] == 257
    listing = subprocess.run([sys.executable, "-m", "chain", "list"], capture_output=True, text=True,
                             env={"CHAIN_WEIGHTS": str(tmp_path), "COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    lines = listing.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("deeplab-mnv2:voc"))
    assert f"    weights present: {tmp_path / 'deeplab-mnv2-voc'}" in lines[first + 1: first + 3]


def test_people_in_real_footage_are_labelled_person(voc_checkpoint: Path, tmp_path: Path) -> None:
    clip = shared_file("data/videos/pexels-koolshooters-7322716.mp4")
    summary = chain.run(clip, seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="none", max_frames=4,
                        size="240", batch_size=2, masks=tmp_path / "masks.mp4", summary=tmp_path / "s.json")
    assert summary.mean_class_share["person"] > 0.5  # a person fills most of this clip
    carphone = shared_file("data/videos/carphone_pristine.mp4")
    summary = chain.run(carphone, seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="none",
                        max_frames=4, batch_size=4, save_labels=tmp_path / "labels")
    assert max(summary.mean_class_share, key=summary.mean_class_share.get) in ("person", "background")
    assert summary.mean_class_share["person"] > 0.15


def test_fit_options_and_smoothing(voc_checkpoint: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (2, 90, 160, 3), dtype=np.uint8)
    square = build_stage("segmenter", "deeplab-mnv2:voc", StageContext(weights=str(voc_checkpoint)))
    aspect = build_stage("segmenter", "deeplab-mnv2:voc",
                         StageContext(weights=str(voc_checkpoint), options={"fit": "aspect", "size": "129"}))
    assert square.scores(frames).shape[-2:] == (257, 257)
    assert aspect.scores(frames).shape[-2:] == (129, 229)
    assert square.segment(frames, indices=np.arange(2)).shape == (2, 90, 160)
    probabilities = square.probabilities(frames, indices=np.arange(2))
    assert probabilities.shape[1] == 21 and np.allclose(probabilities.sum(1).numpy(), 1, atol=1e-4)


def test_missing_checkpoint_says_how_to_make_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="chain import tflite deeplabv3_mnv2_ade20k_513.tflite"):
        build_stage("segmenter", "deeplab-mnv2:ade20k", StageContext())
