"""The chain end to end on real footage: stages, conversion, remapping, inspection outputs."""

from __future__ import annotations

import json
import urllib.error
from importlib.metadata import EntryPoint
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import chain
from chain.engine.pipeline import Chain
from chain.engine.render import MaskRenderer
from chain.errors import ChainError, MissingWeightsError
from chain.labels import COCO_STUFF, LABEL_SPACES, VOC, conversion
from chain.media.outputs import Outputs
from chain.stages import StageContext, build_stage, registry
from chain.stages.base import Synthesizer
from chain.stages.lookup import PaletteSegmenter


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def painted_frames(folder: Path, space=VOC, count: int = 3, size: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    """Write frames painted from ``space``'s palette (blocks of random classes); return their label maps."""
    rng = np.random.default_rng(7)
    folder.mkdir()
    maps = []
    for index in range(count):
        blocks = rng.integers(0, len(space), (size[0] // 8, size[1] // 8))
        labels = np.kron(blocks, np.ones((8, 8), dtype=np.int64)).astype(space.dtype)
        Image.fromarray(space.colorize(labels)).save(folder / f"{index:03d}.png")
        maps.append(labels)
    return maps


@pytest.mark.parametrize("space_name", sorted(LABEL_SPACES))
def test_palette_segmenter_maps_painted_frames_back_exactly(space_name: str) -> None:
    space = LABEL_SPACES[space_name]
    labels = np.arange(len(space), dtype=space.dtype).reshape(1, 1, -1).repeat(3, axis=1)
    segmented = PaletteSegmenter(space).segment(space.colorize(labels), indices=np.arange(1))
    assert np.array_equal(segmented, labels)


def test_palette_chain_paints_back_its_input_and_remaps(tmp_path: Path) -> None:
    maps = painted_frames(tmp_path / "painted")
    chain.run(tmp_path / "painted", tmp_path / "same", seg="palette:voc", synth="colorize")
    chain.run(tmp_path / "painted", tmp_path / "swapped", seg="palette:voc", synth="colorize",
              remap=["person=cat,car=boat"])
    person, cat, car, boat = (VOC.id_of(n) for n in ("person", "cat", "car", "boat"))
    for index, labels in enumerate(maps):
        assert np.array_equal(read_png(tmp_path / "same" / f"{index:06d}.png"), VOC.colorize(labels))
        swapped = labels.copy()
        swapped[labels == person], swapped[labels == car] = cat, boat
        assert np.array_equal(read_png(tmp_path / "swapped" / f"{index:06d}.png"), VOC.colorize(swapped))


def test_voc_labels_are_converted_to_the_synthesizers_space(tmp_path: Path) -> None:
    maps = painted_frames(tmp_path / "painted")
    summary = chain.run(tmp_path / "painted", tmp_path / "coco", seg="palette:voc", synth="colorize:coco-stuff")
    assert summary.target_space == "coco-stuff"
    assert summary.unmapped_classes == []  # every VOC class but background has a COCO-Stuff counterpart
    expected = COCO_STUFF.colorize(chain.labels.conversion(VOC, COCO_STUFF).apply(maps[0]))
    assert np.array_equal(read_png(tmp_path / "coco" / "000000.png"), expected)


@pytest.mark.slow
def test_all_inspection_outputs_on_a_real_clip(carphone: Path, tmp_path: Path) -> None:
    summary = chain.run(
        carphone, tmp_path / "out.mp4", seg="deeplab:mobilenet_v3_large", seg_weights="random",
        seg_options={"size": "144"}, synth="colorize:coco-stuff", max_frames=6, batch_size=4,
        masks=tmp_path / "masks.mp4", overlay=tmp_path / "overlay.mp4", compare=tmp_path / "compare.mp4",
        save_labels=tmp_path / "labels", summary=tmp_path / "summary.json")
    assert summary.frames == 6
    for name in ("out", "masks", "overlay", "compare"):
        assert frame_count(tmp_path / f"{name}.mp4") == 6, name
    with av.open(str(tmp_path / "compare.mp4")) as container:
        # input | labels with legend (colorize's painting is that panel: not shown twice)
        width = container.streams.video[0].codec_context.width
    # as wide as the longest line the legend can hold (VOC's classes converted to COCO-Stuff)
    legend = MaskRenderer(COCO_STUFF, possible=np.unique(conversion(VOC, COCO_STUFF).lut)).legend_width(144)
    assert width == 176 + 176 + legend + legend % 2
    saved = sorted((tmp_path / "labels").glob("*.png"))
    assert [p.name for p in saved] == [f"{i:06d}.png" for i in range(6)]
    first = read_png(saved[0])
    assert first.dtype == np.uint8 and first.shape == (144, 176) and first.max() < len(VOC)
    report = json.loads((tmp_path / "summary.json").read_text())
    assert [f["index"] for f in report["per_frame"]] == list(range(6))
    assert all(abs(sum(f["classes"].values()) - 1) < 1e-3 for f in report["per_frame"])
    assert report["run"]["frames"] == 6 and set(report["run"]["stage_seconds"]) >= {"decode", "segment", "encode"}
    assert not list(tmp_path.glob(".*partial*"))

    # The saved labels feed a later run unchanged.
    chain.run(carphone, tmp_path / "again", seg=f"labels:{tmp_path / 'labels'}", synth="colorize", max_frames=6)
    for index in range(6):
        assert np.array_equal(read_png(tmp_path / "again" / f"{index:06d}.png"),
                              VOC.colorize(read_png(saved[index])))


def test_uint16_label_pngs_for_large_spaces(tmp_path: Path) -> None:
    from chain.labels import LabelSpace, register_label_space

    big = LabelSpace("test-big", tuple(f"class {i}" for i in range(300)),
                     np.stack([np.arange(300) % 256, np.arange(300) // 256, np.zeros(300)], 1), "class 0")
    register_label_space(big)
    painted_frames(tmp_path / "painted", space=big, count=1)
    chain.run(tmp_path / "painted", seg="palette:test-big", synth="none", save_labels=tmp_path / "labels")
    saved = read_png(tmp_path / "labels" / "000000.png")
    assert saved.dtype == np.uint16 and saved.max() >= 256


def test_deeplab_resnet50_real_architecture_with_random_weights(carphone: Path, tmp_path: Path) -> None:
    summary = chain.run(carphone, tmp_path / "out.mp4", seg="deeplab", seg_weights="random",
                        seg_options={"size": "96"}, max_frames=2)
    assert summary.frames == 2 and "ResNet-50" in summary.segmenter
    assert frame_count(tmp_path / "out.mp4") == 2


def test_deeplab_loads_a_state_dict_file(carphone: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = build_stage("segmenter", "deeplab:mobilenet_v3_large",
                            StageContext(weights="random", options={"size": "96"}))
    torch.save(reference.network.state_dict(), tmp_path / "weights.pth")
    loaded = build_stage("segmenter", "deeplab:mobilenet_v3_large",
                         StageContext(weights=str(tmp_path / "weights.pth"), options={"size": "96"}))
    frames = np.random.default_rng(0).integers(0, 255, (2, 64, 80, 3), dtype=np.uint8)
    torch.testing.assert_close(loaded.logits(frames), reference.logits(frames))
    torch.save({"wrong": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(ChainError, match="do not fit"):
        build_stage("segmenter", "deeplab:mobilenet_v3_large", StageContext(weights=str(tmp_path / "wrong.pth")))


def test_missing_deeplab_weights_name_url_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import torchvision.models._api as torchvision_api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision_api, "load_state_dict_from_url", offline)
    with pytest.raises(MissingWeightsError) as caught:
        build_stage("segmenter", "deeplab", StageContext())
    message = str(caught.value)
    assert "https://download.pytorch.org/models/deeplabv3_resnet50_coco" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert "\n" not in message


class ExplodingSynthesizer(Synthesizer):
    description = "fails on its third call"

    def __init__(self) -> None:
        self.label_space = VOC
        self.calls = 0

    def synthesize(self, *, labels, frames):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return VOC.colorize(labels)


def test_a_failed_run_leaves_no_outputs(carphone: Path, tmp_path: Path) -> None:
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ExplodingSynthesizer())
    outputs = Outputs(video=tmp_path / "out.mp4", masks=tmp_path / "masks.mp4", labels=tmp_path / "labels",
                      summary=tmp_path / "summary.json")
    with pytest.raises(RuntimeError, match="boom"):
        pipeline(carphone, outputs, trim=chain.media.Trim(max_frames=10))
    assert list(tmp_path.iterdir()) == []


def test_unknown_remap_class_suggests_close_matches() -> None:
    with pytest.raises(ChainError, match="unicorn") as caught:
        chain.api.build_chain(seg="palette:voc", synth="colorize:coco-stuff", remap=["person=unicorn"])
    assert "did you mean" in str(caught.value)


def test_stages_from_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plugin = tmp_path / "chain_test_plugin.py"
    plugin.write_text(
        "from chain.stages import StageSpec\n"
        "from chain.stages.lookup import ColorizeSynthesizer\n"
        "from chain.labels import CAMVID\n"
        "SPEC = StageSpec(name='camvid-paint', kind='synthesizer', summary='test plugin',\n"
        "                 build=lambda variant, context: ColorizeSynthesizer(CAMVID))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [EntryPoint(name="camvid-paint", value="chain_test_plugin:SPEC", group=registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: fake if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert "camvid-paint" in registry.stages("synthesizer")
    pipeline = chain.api.build_chain(seg="palette:voc", synth="camvid-paint")
    assert pipeline.target_space.name == "camvid"
    assert "person" in [n for n in VOC.names] and pipeline.conversion.apply(np.array([VOC.id_of("person")]))[0] == \
        pipeline.target_space.id_of("pedestrian")


def test_output_flicker_compares_output_change_with_input_change(tmp_path: Path) -> None:
    painted_frames(tmp_path / "painted", count=4)
    # colorize paints palette-coloured frames back exactly: the output changes as much as the input.
    summary = chain.run(tmp_path / "painted", tmp_path / "same", seg="palette:voc", synth="colorize")
    assert summary.output_flicker == pytest.approx(1.0) and summary.output_change == summary.input_change > 0
    assert chain.run(tmp_path / "painted", None, seg="palette:voc", synth=None,
                     masks=tmp_path / "m.mp4").output_flicker is None  # nothing synthesized

    from chain.engine.summary import FrameChangeTracker

    tracker = FrameChangeTracker()
    still = np.zeros((2, 2, 3), np.uint8)
    tracker.add(still, still)
    assert tracker.flicker is None and tracker.output_change is None  # one frame: no pair yet
    tracker.add(np.full((2, 2, 3), 6, np.uint8), still)
    tracker.add(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 3, np.uint8))
    assert (tracker.output_change, tracker.input_change, tracker.flicker) == (6.0, 1.5, 4.0)
