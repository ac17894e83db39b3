"""``deeplab-mnv2`` with ``backend=onnx``: ONNX Runtime gives the torch port's labels, from a cached export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from chain.errors import ChainError
from chain.labels import get_label_space
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.onnx_graphs import checkpoint_stamp
from chain.stages.onnx_segmenter import MAX_FRAME_GRAPHS, SLEEPING, SPINNING, OnnxSegmenter, waiting_settings
from chain.stages.torch_segmenter import TorchSegmenter
from models.deeplab_mnv2 import DeepLabMNv2, DeepLabMNv2Config


def _segmenter(checkpoint: Path, **options: str) -> TorchSegmenter:
    return build_stage("segmenter", "deeplab-mnv2:voc", StageContext(weights=str(checkpoint), options=options))


def test_onnx_labels_agree_with_the_torch_port_on_real_frames(voc_checkpoint: Path, carphone: Path) -> None:
    frames = _frames(carphone, 6)
    onnx, port = _segmenter(voc_checkpoint), _segmenter(voc_checkpoint, backend="torch")
    assert isinstance(onnx, OnnxSegmenter) and type(port) is TorchSegmenter  # onnx is the CPU default
    indices = np.arange(len(frames))
    onnx_labels, port_labels = onnx.segment(frames, indices=indices).numpy(), port.segment(frames, indices=indices).numpy()
    assert (port_labels == 15).mean() > 0.2  # the driver is a person: the frames are not trivially agreed on
    assert (onnx_labels == port_labels).mean() >= 0.999
    np.testing.assert_allclose(onnx.scores(frames[:2]).numpy(), port.scores(frames[:2]).numpy(), atol=2e-3)


def _frames(video: Path, count: int) -> np.ndarray:
    with open_source(video, trim=Trim(max_frames=count)) as source:
        return np.stack([frame.rgb for frame in source])


@pytest.mark.parametrize(("clip", "sizes", "takes_frames", "gives_labels"), [
    ("carphone", [(144, 176), (256, 256)], True, True),   # enlarged frames, few labels: all in one graph
    ("carphone", [(576, 704)], True, False),               # many labels: resized_argmax on the host
    ("bunny", [(90, 160), (128, 128)], False, True),        # shrunk 720p frames: antialiased in torch
    ("bunny", [(720, 1280)], False, False),                 # the network alone
])
def test_each_graph_gives_the_ports_labels(voc_checkpoint: Path, request: pytest.FixtureRequest, clip: str,
                                           sizes: list[tuple[int, int]], takes_frames: bool, gives_labels: bool) -> None:
    frames = _frames(request.getfixturevalue(clip), 2)
    onnx, port = _segmenter(voc_checkpoint), _segmenter(voc_checkpoint, backend="torch")
    indices = np.arange(len(frames))
    labels = onnx.segment_sizes(frames, indices=indices, sizes=sizes)
    (graph,) = onnx._frame_graphs.values()
    assert (graph.takes_frames, graph.gives_labels) == (takes_frames, gives_labels)
    for got, expected in zip(labels, port.segment_sizes(frames, indices=indices, sizes=sizes)):
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert len(np.unique(expected)) >= 2  # a boundary to get wrong
        assert (got.numpy() == expected.numpy()).mean() >= 0.999


def test_the_frame_graphs_used_last_are_kept(voc_checkpoint: Path) -> None:
    segmenter = _segmenter(voc_checkpoint, size="33")

    def segment(side: int) -> None:
        segmenter.segment(np.zeros((1, side, side, 3), np.uint8), indices=np.arange(1))

    for side in range(20, 20 + MAX_FRAME_GRAPHS):  # as the UI previews videos of many sizes
        segment(side)
    segment(20)  # used again: now the most recent
    segment(99)
    assert [size for size, _ in segmenter._frame_graphs] == [
        *((side, side) for side in range(22, 20 + MAX_FRAME_GRAPHS)), (20, 20), (99, 99)]  # 21 dropped


@pytest.mark.parametrize(("input_size", "frame_size", "sizes", "takes_frames"), [
    ((33, 33), (20, 24), [(20, 24), (16, 16)], True),   # enlarged to the square input: all in one graph
    ((33, 33), (50, 40), [(50, 40)], False),            # shrunk, antialiased in torch; labels in the graph
    (33, (20, 30), [(20, 30)], True),                   # fit=aspect: short side 33, a 33x50 input
])
def test_a_tiny_network_gives_the_same_labels_in_onnx_runtime_and_torch(
        tmp_path: Path, input_size: int | tuple[int, int], frame_size: tuple[int, int], sizes: list[tuple[int, int]],
        takes_frames: bool) -> None:
    torch.manual_seed(0)
    network = DeepLabMNv2(DeepLabMNv2Config(num_classes=21, width_multiplier=0.35, aspp_channels=8, input_size=33))
    for conv in (module for module in network.modules() if isinstance(module, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight)  # logits that vary over the frame (default init: biases win)
        if conv.bias is not None:
            torch.nn.init.zeros_(conv.bias)
    # Channel c is not label c (as in ADE20K's file, whose channel 0 is "other"): the graph looks the ids up.
    channel_to_label = np.random.default_rng(1).permutation(21)
    common = dict(label_space=get_label_space("voc"), mean=[0.5] * 3, std=[0.25] * 3, input_size=input_size,
                  channel_to_label=channel_to_label.tolist())
    onnx = OnnxSegmenter(network.eval(), checkpoint=tmp_path, threads=1, **common)
    port = TorchSegmenter(network, **common)
    frames = np.random.default_rng(0).integers(0, 256, (2, *frame_size, 3), dtype=np.uint8)
    indices = np.arange(2)
    labels = onnx.segment_sizes(frames, indices=indices, sizes=sizes)
    (graph,) = onnx._frame_graphs.values()
    assert (graph.takes_frames, graph.gives_labels) == (takes_frames, True)
    for got, expected in zip(labels, port.segment_sizes(frames, indices=indices, sizes=sizes)):
        assert got.dtype == expected.dtype and got.shape == expected.shape == (2, *got.shape[1:])
        assert len(np.unique(expected.numpy())) >= 2
        assert (got.numpy() == expected.numpy()).mean() >= 0.999
    assert onnx.segment_sizes(frames, indices=indices, sizes=[]) == []


def test_spinning_is_bounded_or_off() -> None:
    assert waiting_settings("1.32.0") == waiting_settings("1.26.0.dev20250301") == SPINNING
    # Older runtimes ignore the bound's key, and unbounded spinning halves the speed beside a busy core.
    assert waiting_settings("1.25.1") == waiting_settings("1.18.0") == SLEEPING


def test_the_export_is_cached_in_chains_weights_folder_and_reused(voc_checkpoint: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    before = sorted(voc_checkpoint.parent.iterdir())
    frames = np.random.default_rng(0).integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)
    _segmenter(voc_checkpoint, size="33").segment(frames, indices=np.arange(1))
    assert sorted(voc_checkpoint.parent.iterdir()) == before  # nothing written beside the user's checkpoint
    cache = tmp_path / "weights" / "onnx"
    (exported,) = cache.glob("deeplab-mnv2-voc-*-33x33-features.*.onnx")
    assert [p.name for p in cache.iterdir() if ".partial-" in p.name] == []  # staging left nothing behind
    written = exported.stat().st_mtime_ns
    _segmenter(voc_checkpoint, size="33").segment(frames, indices=np.arange(1))
    assert exported.stat().st_mtime_ns == written


def test_the_same_network_imported_again_reuses_its_export(voc_checkpoint: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    again = shutil.copytree(voc_checkpoint, tmp_path / "elsewhere" / voc_checkpoint.name)  # a new path and time
    frames = np.zeros((1, 40, 50, 3), np.uint8)
    for checkpoint in (voc_checkpoint, again):
        _segmenter(checkpoint, size="33").segment(frames, indices=np.arange(1))
    assert len(list((tmp_path / "weights" / "onnx").glob("*.onnx"))) == 1
    config = again / "config.json"
    config.write_text(config.read_text() + "\n")  # any change to the checkpoint: another export
    assert checkpoint_stamp(again) != checkpoint_stamp(voc_checkpoint)


def test_threads_reach_onnx_runtime(voc_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    frames = np.zeros((1, 20, 20, 3), np.uint8)
    for asked, expected in ((None, 0), (1, 1), (2, 2)):
        segmenter = build_stage("segmenter", "deeplab-mnv2:voc",
                                StageContext(weights=str(voc_checkpoint), options={"size": "33"}, threads=asked))
        segmenter.segment(frames, indices=np.arange(1))
        segmenter.scores(frames)
        sessions = [*segmenter._sessions.values(), *(graph.session for graph in segmenter._frame_graphs.values())]
        assert len(sessions) == 2  # the network alone (for scores), and the whole graph for 20x20 frames
        for session in sessions:
            options = session.get_session_options()
            assert options.intra_op_num_threads == expected
            # Idle workers spin briefly: unbounded, the pool halves its speed when another process holds a core.
            assert options.get_session_config_entry("session.intra_op.spin_duration_us") == "20"


def test_tflite_quantization_stays_in_torch(voc_checkpoint: Path) -> None:
    with pytest.raises(ChainError, match="^--seg-opt quantization=tflite .*torch only; drop backend=onnx"):
        _segmenter(voc_checkpoint, backend="onnx", quantization="tflite")
    assert type(_segmenter(voc_checkpoint, quantization="tflite")) is TorchSegmenter
    with pytest.raises(ChainError, match="backend='tensorrt': choose one of torch, onnx"):
        _segmenter(voc_checkpoint, backend="tensorrt")
