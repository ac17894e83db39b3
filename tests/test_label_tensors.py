"""Labels stay on the device: label tensors, the chain's one lookup table, the size labels are made
at, the one nearest-neighbour rule, the single host copy of synthesized frames, batched trackers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chain.engine.pipeline import Chain
from chain.engine.render import resize_frames
from chain.engine.summary import ClassShareTracker, FrameChangeTracker
from chain.labels import COCO_STUFF, VOC, conversion, remap_table
from chain.labels.resize import resize_labels
from chain.media.outputs import Outputs
from chain.stages import StageContext, build_stage
from chain.stages.base import LABEL_DTYPE, Synthesizer
from chain.stages.lookup import ColorizeSynthesizer, PaletteSegmenter


def test_resize_labels_samples_the_pixel_under_each_output_pixels_centre() -> None:
    row = np.arange(6)[None, None, :].repeat(2, axis=1)  # (1, 2, 6): ids 0..5 across
    # 6 → 4: centres at 0.75, 2.25, 3.75, 5.25 input pixels (torch's plain "nearest" takes 0, 1, 3, 4)
    assert resize_labels(row, (2, 4))[0, 0].tolist() == [0, 2, 3, 5]
    # 2 → 5: centres at 0.2, 0.6, 1.0, 1.4, 1.8 (a centre on a boundary takes the pixel after it)
    assert resize_labels(np.array([[[7, 9]]]), (1, 5))[0, 0].tolist() == [7, 7, 9, 9, 9]
    tensor = torch.from_numpy(row)
    assert resize_labels(tensor, (2, 6)) is tensor  # its own size: untouched
    rng = np.random.default_rng(0)
    for height, width, size in [(33, 7, (8, 13)), (90, 160, (256, 448)), (257, 257, (64, 64)), (3, 5, (1, 1))]:
        labels = rng.integers(0, 180, (2, height, width))
        ours = resize_labels(torch.from_numpy(labels), size)
        assert ours.dtype == torch.int64 and torch.equal(ours, torch.from_numpy(resize_labels(labels, size)))
        # the same pixels as torch's nearest-exact and as ControlNet sampled before (floats, pixel centres)
        exact = torch.nn.functional.interpolate(torch.from_numpy(labels)[:, None].double(), size=size,
                                                mode="nearest-exact")[:, 0].long()
        assert torch.equal(ours, exact)
        rows = ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64)
        cols = ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64)
        np.testing.assert_array_equal(ours.numpy(), labels[:, rows][:, :, cols])
    frames = rng.integers(0, 256, (1, 9, 9, 3), dtype=np.uint8)  # trailing channels carried along
    assert resize_labels(frames, (3, 3)).shape == (1, 3, 3, 3)


def test_palette_labels_at_a_smaller_size_are_the_frame_labels_resized() -> None:
    labels = np.random.default_rng(1).integers(0, len(VOC), (2, 30, 50))
    frames = VOC.colorize(labels)
    segmenter = PaletteSegmenter(VOC)
    full = segmenter.segment(frames, indices=np.arange(2))
    assert full.dtype == LABEL_DTYPE and np.array_equal(full.numpy(), labels)
    assert torch.equal(segmenter.segment(frames, indices=np.arange(2), size=(7, 11)), resize_labels(full, (7, 11)))


def test_the_chain_converts_and_remaps_with_one_table_on_the_labels_device() -> None:
    rules = ["cat=bear", "person=snow"]
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ColorizeSynthesizer(COCO_STUFF), remap=rules)
    ids = torch.arange(len(VOC)).repeat(2, 3, 1)  # every VOC id, in a (2, 3, 21) batch
    target = pipeline.target_labels(ids)
    expected = remap_table(COCO_STUFF, rules)[conversion(VOC, COCO_STUFF).lut[ids.numpy()]]
    assert isinstance(target, torch.Tensor) and target.dtype == LABEL_DTYPE and target.device == ids.device
    np.testing.assert_array_equal(target.numpy(), expected)
    np.testing.assert_array_equal(pipeline.target_labels(ids.numpy()), expected)  # the numpy path agrees
    assert [COCO_STUFF.names[int(target[1, 2, VOC.id_of(name)])] for name in ("cat", "person", "aeroplane")] == \
        ["bear", "snow", "airplane"]
    same = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ColorizeSynthesizer(None))
    assert same.target_labels(ids) is ids  # one space, no remap: no lookup at all


def test_spade_samples_its_labels_at_pixel_centres() -> None:
    from tests.conftest import shared_file

    stage = build_stage("synthesizer", "spade", StageContext(
        weights=str(shared_file("fixtures/spade_reference/coco_ngf8_G.pth")), options={"size": "64"}))
    labels = np.random.default_rng(2).integers(0, len(COCO_STUFF), (1, 90, 120))
    size = stage.label_size(90, 120)
    assert size == stage.generation_size(90, 120)[1] == (64, 96)  # a 2 × 3 latent grid, 32× upsampled
    painted = stage.synthesize(labels=torch.from_numpy(labels), frames=None)
    assert painted.dtype == torch.uint8 and painted.shape == (1, *size, 3)
    assert torch.equal(stage.synthesize(labels=resize_labels(labels, size), frames=None), painted)
    # torch's plain "nearest" (what it sampled before) takes other pixels, and paints another picture
    plain = torch.nn.functional.interpolate(torch.from_numpy(labels)[:, None].float(), size=size)[:, 0].long()
    assert not torch.equal(stage.synthesize(labels=plain, frames=None), painted)


class _Recorder(PaletteSegmenter):
    """The palette segmenter, noting the sizes it was asked for."""

    def __init__(self) -> None:
        super().__init__(VOC)
        self.sizes: list[tuple[int, int] | None] = []

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        self.sizes.append(size)
        return super().segment(frames, indices=indices, size=size)


class _GridPainter(Synthesizer):
    """Paints palette colours on an 8×12 grid, noting the label maps' shapes."""

    label_space = VOC

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def label_size(self, height: int, width: int) -> tuple[int, int]:
        return 8, 12

    def synthesize(self, *, labels: torch.Tensor | np.ndarray | None, frames: np.ndarray) -> torch.Tensor:
        self.shapes.append(tuple(labels.shape))
        return torch.from_numpy(VOC.palette.copy())[resize_labels(labels, (8, 12))]


def _frames(folder: Path, count: int = 2) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(count):
        labels = np.kron(rng.integers(0, len(VOC), (6, 8)), np.ones((8, 8), np.int64))  # 48 × 64
        Image.fromarray(VOC.colorize(labels)).save(folder / f"{index:03d}.png")
    return folder


def test_the_synthesizer_gets_grid_labels_and_label_outputs_get_frame_size_labels_too(tmp_path: Path) -> None:
    source = _frames(tmp_path / "in")
    segmenter, synthesizer = _Recorder(), _GridPainter()
    pipeline = Chain(segmenter=segmenter, synthesizer=synthesizer)
    summary = pipeline(source, Outputs(video=tmp_path / "video"), batch_size=2)
    assert segmenter.sizes == [(8, 12)] and synthesizer.shapes == [(2, 8, 12)]
    assert summary.label_flicker is not None  # counted on the labels it had
    for output in ("masks", "overlay", "compare", "labels", "summary"):
        segmenter.sizes, synthesizer.shapes = [], []
        target = tmp_path / f"{output}.json" if output == "summary" else tmp_path / output
        pipeline(source, Outputs(video=tmp_path / f"video-{output}", **{output: target}), batch_size=2)
        # One look at the frames (the palette labels the frame size once and samples the grid from
        # it): the synthesizer still gets grid labels, so the painting never depends on the outputs.
        assert segmenter.sizes == [(48, 64)] and synthesizer.shapes == [(2, 8, 12)], output
    # Painted from grid labels or from frame labels sampled to the grid: the same video (a palette
    # pixel's label is its own, so sampling frames first equals sampling their labels).
    videos = [sorted((tmp_path / name).glob("*.png")) for name in ("video", "video-masks")]
    assert len(videos[0]) == len(videos[1]) == 2
    for plain, shown in zip(*videos):
        np.testing.assert_array_equal(np.asarray(Image.open(plain)), np.asarray(Image.open(shown)))


def test_resize_frames_takes_tensors_and_returns_host_uint8() -> None:
    frames = np.random.default_rng(4).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    on_host = resize_frames(frames, 45, 64)
    from_tensor = resize_frames(torch.from_numpy(frames), 45, 64)
    assert isinstance(from_tensor, np.ndarray) and from_tensor.dtype == np.uint8
    np.testing.assert_array_equal(from_tensor, on_host)
    np.testing.assert_array_equal(resize_frames(torch.from_numpy(frames), 20, 30), frames)  # same size: copied


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resize_frames_on_cuda_copies_through_pinned_memory() -> None:
    frames = np.random.default_rng(5).integers(0, 256, (3, 40, 60, 3), dtype=np.uint8)
    resized = resize_frames(torch.from_numpy(frames).cuda(), 90, 128)
    assert isinstance(resized, np.ndarray) and resized.dtype == np.uint8
    np.testing.assert_allclose(resized.astype(int), resize_frames(frames, 90, 128).astype(int), atol=1)


def test_trackers_give_the_same_figures_in_batches_as_frame_by_frame() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, (7, 9, 11)).astype(np.uint8)  # few classes: consecutive frames differ in part
    labels[3] = labels[2]
    indices, times = np.arange(7), np.arange(7) / 25
    one, batched = io.StringIO(), io.StringIO()
    single = ClassShareTracker(VOC, one)
    for index, time_s, frame_labels in zip(indices, times, labels):
        single.add(int(index), float(time_s), frame_labels)
    tracker = ClassShareTracker(VOC, batched)
    for start, stop in ((0, 3), (3, 4), (4, 7)):
        tracker.add_batch(indices[start:stop], times[start:stop], torch.from_numpy(labels[start:stop]).long())
    assert batched.getvalue() == one.getvalue() and '"flicker": 0.0' in one.getvalue()
    assert tracker.mean_shares() == single.mean_shares() and tracker.mean_flicker == single.mean_flicker
    expected = np.mean([np.count_nonzero(a != b) / a.size for a, b in zip(labels, labels[1:])])
    assert tracker.mean_flicker == pytest.approx(expected, rel=1e-12)
    outputs = rng.integers(0, 256, (7, 5, 6, 3), dtype=np.uint8)
    inputs = rng.integers(0, 256, (7, 5, 6, 3), dtype=np.uint8)
    frame_by_frame, in_batches = FrameChangeTracker(), FrameChangeTracker()
    for output, input_frame in zip(outputs, inputs):
        frame_by_frame.add(output, input_frame)
    for start, stop in ((0, 1), (1, 5), (5, 7)):
        in_batches.add_batch(outputs[start:stop], inputs[start:stop])
    assert (in_batches.pairs, in_batches.output_change, in_batches.input_change) == \
        (frame_by_frame.pairs, frame_by_frame.output_change, frame_by_frame.input_change) == \
        (6, pytest.approx(np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(outputs[1:], outputs)])),
         pytest.approx(np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(inputs[1:], inputs)])))
