"""The contract every registered stage keeps, checked on a tiny build of each.

A segmenter speaks a `LabelSpace`, labels a ``(B, H, W, 3)`` uint8 batch with ``(B, H, W)`` maps in
its space's dtype and range, labels a frame the same alone or in a batch, gives probabilities
over its classes, and can be reset. A synthesizer paints ``(B, h, w, 3)`` uint8 frames from label
maps in its space (or from frames), the same alone or in a batch, and can be reset.

A stage registered without a tiny build below fails here: add one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from chain.labels import LabelSpace
from chain.stages import StageContext, build_stage, stages
from chain.stages.base import LABEL_DTYPE, Segmenter, Synthesizer
from tests.conftest import shared_file

Build = Callable[[Path], tuple[str, StageContext]]


def _deeplab_mnv2(folder: Path) -> tuple[str, StageContext]:
    from chain.importers.tflite import save_imported

    weights = save_imported(shared_file("weights/deeplabv3_mnv2_voc_257.tflite"), folder / "voc", label_space="voc")
    return "deeplab-mnv2:voc", StageContext(weights=str(weights), options={"size": "65"})


def _saved_labels(folder: Path) -> tuple[str, StageContext]:
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 21, (24, 32), dtype=np.uint8)).save(folder / f"{index:06d}.png")
    (folder / "labels.json").write_text(json.dumps({"label_space": "voc"}))
    return f"labels:{folder}", StageContext()


def _vaegan(folder: Path) -> tuple[str, StageContext]:
    from chain.weights.folder import save_checkpoint
    from models.vaegan import VAEGAN, VAEGANConfig

    torch.manual_seed(0)
    config = VAEGANConfig(height=32, width=48, latent_dim=8, filters=(4, 8, 16, 32))
    save_checkpoint(folder / "vaegan", model="vaegan", config=config, state_dict=VAEGAN(config).state_dict())
    return "vaegan", StageContext(weights=str(folder / "vaegan"))


def _controlnet(folder: Path) -> tuple[str, StageContext]:
    from support.tiny_diffusion import write_tiny_controlnet

    base, controlnet = write_tiny_controlnet(folder)
    return "controlnet", StageContext(options={"base": str(base), "controlnet": str(controlnet), "steps": "1",
                                               "size": "32", "guidance": "1"})


def _hf(kind: str) -> Build:
    def build(folder: Path) -> tuple[str, StageContext]:
        from chain.labels import get_label_space
        from support.tiny_transformers import write_mask2former, write_segformer

        if kind == "segformer":
            source = write_segformer(folder / "segformer", get_label_space("ade20k").names[:-1])
        else:
            source = write_mask2former(folder / "mask2former", get_label_space("coco-panoptic").names[:-1])
        if kind == "hf":
            return f"hf:{source}", StageContext()
        return kind, StageContext(weights=str(source))

    return build


TINY_BUILDS: dict[str, Build] = {
    "deeplab": lambda folder: ("deeplab:mobilenet_v3_large", StageContext(weights="random", options={"size": "64"})),
    "deeplab-mnv2": _deeplab_mnv2,
    "palette": lambda folder: ("palette:voc", StageContext()),
    "labels": _saved_labels,
    "colorize": lambda folder: ("colorize:coco-stuff", StageContext()),
    "spade": lambda folder: ("spade", StageContext(weights=str(shared_file(
        "fixtures/spade_reference/coco_ngf8_G.pth")))),
    "vaegan": _vaegan,
    "controlnet": _controlnet,
    "hf": _hf("hf"),
    "mask2former": _hf("mask2former"),
    "segformer": _hf("segformer"),
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks only pay for thread hand-offs
    yield
    torch.set_num_threads(threads)


def _host(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """A synthesizer's frames (a tensor on its device, or numpy) as numpy."""
    return images.cpu().numpy() if isinstance(images, torch.Tensor) else images


def _frames(count: int = 2, height: int = 24, width: int = 32) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _build(kind: str, name: str, folder: Path) -> Segmenter | Synthesizer:
    if name not in TINY_BUILDS:
        pytest.fail(f"the {kind} {name!r} has no tiny build in tests/test_stage_contract.py: add one")
    text, context = TINY_BUILDS[name](folder)
    return build_stage(kind, text, context)


@pytest.mark.parametrize("name", sorted(stages("segmenter")))
def test_segmenter_contract(name: str, tmp_path: Path) -> None:
    stage = _build("segmenter", name, tmp_path)
    assert isinstance(stage, Segmenter) and isinstance(stage.label_space, LabelSpace) and stage.description
    frames = _frames(3)
    stage.reset()
    labels = stage.segment(frames, indices=np.arange(3))
    # label tensors of one dtype, on the stage's device (base.LABEL_DTYPE)
    assert isinstance(labels, torch.Tensor) and labels.shape == frames.shape[:3] and labels.dtype == LABEL_DTYPE
    assert labels.device == getattr(stage, "device", torch.device("cpu"))
    assert 0 <= labels.min() and labels.max() < len(stage.label_space)
    stage.reset()
    alone = torch.cat([stage.segment(frames[i:i + 1], indices=np.array([i])) for i in range(3)])
    assert torch.equal(alone, labels)  # a frame's labels do not depend on its batch
    stage.reset()
    small = stage.segment(frames, indices=np.arange(3), size=(12, 20))  # the synthesizer's grid, say
    assert small.shape == (3, 12, 20) and small.dtype == LABEL_DTYPE and small.max() < len(stage.label_space)
    probabilities = stage.probabilities(frames[:2], indices=np.arange(2))
    assert probabilities.shape[:2] == (2, len(stage.label_space)) and probabilities.dim() == 4
    assert torch.isfinite(probabilities).all()


@pytest.mark.parametrize("name", sorted(stages("synthesizer")))
def test_synthesizer_contract(name: str, tmp_path: Path) -> None:
    stage = _build("synthesizer", name, tmp_path)
    assert isinstance(stage, Synthesizer) and stage.consumes in ("labels", "frames") and stage.description
    frames = _frames(2)
    labels = None
    if stage.consumes == "labels":
        if stage.label_space is None:
            from chain.labels import get_label_space

            stage.bind(get_label_space("voc"))
        space = stage.label_space
        labels = np.random.default_rng(2).integers(0, len(space), frames.shape[:3]).astype(space.dtype)
    stage.reset()
    painted = _host(stage.synthesize(labels=labels, frames=frames))
    assert painted.dtype == np.uint8 and painted.ndim == 4 and painted.shape[0] == 2 and painted.shape[-1] == 3
    if labels is not None:  # label tensors, as the chain gives them, paint the same as numpy labels
        stage.reset()
        np.testing.assert_array_equal(_host(stage.synthesize(labels=torch.from_numpy(labels.astype(np.int64)),
                                                             frames=frames)), painted)
    stage.reset()
    alone = np.concatenate([_host(stage.synthesize(labels=None if labels is None else labels[i:i + 1],
                                                   frames=frames[i:i + 1])) for i in range(2)])
    np.testing.assert_allclose(alone.astype(int), painted.astype(int), atol=1)  # float kernels vary with batch


def test_a_segmenter_written_for_the_old_contract_is_refused_in_one_line() -> None:
    from chain.bounds import parse_smoothing
    from chain.engine.pipeline import Chain
    from chain.errors import ChainError
    from chain.labels import get_label_space
    from chain.stages.smoothing import SmoothedSegmenter

    class OldStyle(Segmenter):  # numpy labels at the frame size, no size= (before label tensors)
        label_space = get_label_space("voc")
        description = "old plugin"

        def segment(self, frames: np.ndarray, *, indices: np.ndarray) -> np.ndarray:
            return np.zeros(frames.shape[:3], np.uint8)

    for segmenter in (OldStyle(), SmoothedSegmenter(OldStyle(), parse_smoothing("ema:0.5"))):
        with pytest.raises(ChainError, match="'old plugin' implements segment\\(frames, indices\\) without size="):
            Chain(segmenter=segmenter, synthesizer=None)
