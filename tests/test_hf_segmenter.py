"""Segmenters over transformers (``hf:``, ``mask2former``, ``segformer``) with tiny random models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chain.bounds import Smoothing
from chain.entry import main as chain_main
from chain.labels import ADE20K, COCO_PANOPTIC, COCO_STUFF
from chain.stages import StageContext, build_stage, get_stage, hf_segmenter
from chain.stages.base import LABEL_DTYPE
from chain.stages.smoothing import SmoothedSegmenter
from support.tiny_transformers import write_mask2former, write_segformer
from tests.conftest import shared_file

HUB_ADE_NAMES = ["bed " if name == "bed" else name for name in ADE20K.names[:150]]  # the Hub's id2label spelling


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-transformers")
    return {"mask2former": write_mask2former(root / "mask2former", COCO_PANOPTIC.names[:133]),
            "segformer": write_segformer(root / "segformer", HUB_ADE_NAMES)}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small only pay for threads' hand-offs
    yield
    torch.set_num_threads(threads)


def scene(frames: int = 3) -> np.ndarray:
    """Sky over grass with a red figure moving right: frames (B, 72, 96, 3)."""
    pixels = np.zeros((frames, 72, 96, 3), np.uint8)
    pixels[:, :36], pixels[:, 36:] = (200, 220, 255), (60, 140, 40)
    for i in range(frames):
        pixels[i, 20:60, 20 + 10 * i:44 + 10 * i] = (220, 20, 60)
    return pixels


def segmenter(source: Path | str, **options: str):
    return build_stage("segmenter", f"hf:{source}", StageContext(options=options))


@pytest.mark.parametrize("architecture, space", [("mask2former", "coco-panoptic"), ("segformer", "ade20k")])
def test_chain_run_through_an_hf_folder_writes_masks_labels_and_a_spade_painting(
        carphone: Path, models: dict[str, Path], tmp_path: Path, architecture: str, space: str) -> None:
    spade = shared_file("fixtures/spade_reference/coco_ngf8_G.pth")
    chain_main(["run", str(carphone), str(tmp_path / "painted"), "--seg", f"hf:{models[architecture]}",
                "--synth", "spade", "--synth-weights", str(spade), "--synth-opt", "size=64", "--remap", "person=bear",
                "--masks", str(tmp_path / "masks"), "--save-labels", str(tmp_path / "labels"),
                "--summary", str(tmp_path / "run.json"), "--max-frames", "3", "--batch", "2", "--device", "cpu",
                "--quiet"])
    painted, masks, labels = (sorted((tmp_path / name).glob("*.png")) for name in ("painted", "masks", "labels"))
    assert len(painted) == len(masks) == len(labels) == 3
    assert np.asarray(Image.open(painted[0])).shape == (144, 176, 3)
    assert json.loads((tmp_path / "labels" / "labels.json").read_text()) == {"label_space": space}
    saved = np.stack([np.asarray(Image.open(path)) for path in labels])
    assert saved.shape == (3, 144, 176) and saved.max() < len(COCO_PANOPTIC if space == "coco-panoptic" else ADE20K)
    run = json.loads((tmp_path / "run.json").read_text())["run"]
    assert run["label_space"] == space and run["target_space"] == COCO_STUFF.name
    # the saved maps are what the segmenter says about the same frames
    again = tmp_path / "again"
    chain_main(["run", str(carphone), "--seg", f"hf:{models[architecture]}", "--synth", "none",
                "--save-labels", str(again / "labels"), "--max-frames", "3", "--device", "cpu", "--quiet"])
    assert all(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
               for a, b in zip(labels, sorted((again / "labels").glob("*.png"))))


@pytest.mark.parametrize("architecture", ["mask2former", "segformer"])
def test_saved_and_reloaded_folders_give_identical_labels(models: dict[str, Path], tmp_path: Path,
                                                          architecture: str) -> None:
    original = segmenter(models[architecture])
    original.model.save_pretrained(tmp_path / "copy")
    original.processor.save_pretrained(tmp_path / "copy")
    copy = segmenter(tmp_path / "copy")
    frames, indices = scene(), np.arange(3)
    labels = original.segment(frames, indices=indices)
    assert labels.shape == (3, 72, 96) and labels.dtype == LABEL_DTYPE
    assert len(labels.unique()) > 1  # the tiny models' labels follow the picture
    assert torch.equal(labels, copy.segment(frames, indices=indices))
    torch.testing.assert_close(original.probabilities(frames, indices=indices),
                               copy.probabilities(frames, indices=indices), rtol=0, atol=0)


@pytest.mark.parametrize("architecture", ["mask2former", "segformer"])
def test_a_batch_gives_each_frame_its_own_labels_and_probabilities_rank_like_them(
        models: dict[str, Path], architecture: str) -> None:
    stage = segmenter(models[architecture])
    frames = scene()
    batched = stage.segment(frames, indices=np.arange(3))
    singles = torch.cat([stage.segment(frames[i:i + 1], indices=np.arange(i, i + 1)) for i in range(3)])
    assert torch.equal(batched, singles)
    probabilities = stage.probabilities(frames, indices=np.arange(3))
    assert probabilities.shape[1] == len(stage.label_space)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones_like(probabilities[:, 0]))
    # --smooth with no memory labels frames by the argmax of these probabilities: the same
    # classes as the post-processing, give or take pixels on class borders
    smoothed = SmoothedSegmenter(stage, Smoothing("ema", 0.0)).segment(frames, indices=np.arange(3))
    assert (smoothed == batched).float().mean() > 0.95


def test_size_option_and_large_frames_keep_labels_at_the_frame_size(models: dict[str, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stage = segmenter(models["mask2former"], size="96")
    assert stage._size == {"shortest_edge": 96, "longest_edge": 2000}  # the long-side cap kept in proportion
    frames = scene(1)
    full = stage.segment(frames, indices=np.arange(1))
    # past the memory bound the post-processing runs smaller and the map is enlarged: same classes
    monkeypatch.setattr(hf_segmenter, "MAX_SCORE_VALUES", 134 * 36 * 48)
    bounded = stage.segment(frames, indices=np.arange(1))
    assert bounded.shape == full.shape and (bounded == full).float().mean() > 0.9
    assert segmenter(models["segformer"], size="32")._size == {"height": 32, "width": 32}


def test_a_model_with_its_own_classes_gets_its_own_space_saved_with_its_labels(carphone: Path, tmp_path: Path) -> None:
    folder = write_segformer(tmp_path / "blog-classes", ["lightsaber", "snow", "salt flat"])
    stage = segmenter(folder)
    assert stage.label_space.name == "hf:blog-classes"
    assert stage.label_space.names == ("lightsaber", "snow", "salt flat", "unlabeled")
    labels = tmp_path / "labels"
    chain_main(["run", str(carphone), str(tmp_path / "out"), "--seg", f"hf:{folder}", "--synth", "colorize:coco-stuff",
                "--save-labels", str(labels), "--summary", str(tmp_path / "run.json"), "--max-frames", "2",
                "--device", "cpu", "--quiet"])
    run = json.loads((tmp_path / "run.json").read_text())["run"]
    assert set(run["unmapped_classes"]) == {"lightsaber", "salt flat"}  # snow converts by name
    chain_main(["run", str(carphone), str(tmp_path / "back"), "--seg", f"labels:{labels}", "--synth",
                "colorize:coco-stuff", "--max-frames", "2", "--device", "cpu", "--quiet"])
    for a, b in zip(sorted((tmp_path / "out").glob("*.png")), sorted((tmp_path / "back").glob("*.png"))):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


@pytest.mark.slow  # a fresh interpreter: ~10 s on 2 busy cores
def test_a_missing_model_is_one_line_naming_the_repository(carphone: Path, tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "300",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "chain", "run", str(carphone), "--seg", "mask2former", "--synth",
                             "none", "--masks", str(tmp_path / "m.mp4"), "--max-frames", "1"],
                            capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 3 and len(lines) == 1, result.stderr
    repository = "facebook/mask2former-swin-tiny-coco-panoptic"
    for needle in (repository, f"hf download {repository}", "HF_HUB_OFFLINE", str(tmp_path / "hf")):
        assert needle in lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "m.mp4").exists()


@pytest.mark.parametrize("seg, code, needles", [
    ("hf:someone/some-segmenter", 3, ["'someone/some-segmenter'", "hf download someone/some-segmenter",
                                      "HF_HUB_OFFLINE", "--seg hf:FOLDER"]),
    ("hf:{tmp}/nowhere", 2, ["segmenter folder not found: {tmp}/nowhere"]),
    ("hf:{tmp}", 2, ["could not load the segmenter from {tmp}: "]),
    ("hf", 2, ["the hf segmenter needs a model: --seg hf:REPO_OR_FOLDER"]),
])
def test_model_mistakes_are_one_line(carphone: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch, seg: str, code: int, needles: list[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as exit_info:
        chain_main(["run", str(carphone), "--seg", seg.format(tmp=tmp_path), "--synth", "none",
                    "--masks", str(tmp_path / "m.mp4"), "--max-frames", "1"])
    message = capsys.readouterr().err.strip()
    assert exit_info.value.code == code and "\n" not in message, message
    for needle in needles:
        assert needle.format(tmp=tmp_path) in message


def test_list_shows_the_families_their_spaces_and_where_their_weights_are() -> None:
    mask2former = get_stage("segmenter", "mask2former")
    assert mask2former.default_variant == "coco" and mask2former.label_space("coco-large") == "coco-panoptic"
    assert mask2former.label_space("ade20k") == "ade20k"
    status = mask2former.weights("coco", None)
    assert status.location.startswith("facebook/mask2former-swin-tiny-coco-panoptic") and not status.present
    assert status.how_to_get == "hf download facebook/mask2former-swin-tiny-coco-panoptic"
    assert get_stage("segmenter", "segformer").weights("ade20k", None).location.startswith("nvidia/segformer-b2")


def test_folder_weights_are_present_in_list(models: dict[str, Path]) -> None:
    status = get_stage("segmenter", "hf").weights(str(models["segformer"]), None)
    assert status.present and status.location == str(models["segformer"])
