"""``deeplab-mnv2`` with ``backend=onnx``: ONNX Runtime gives the torch port's labels, from a cached export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chain.errors import ChainError
from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.onnx_segmenter import MAX_FRAME_GRAPHS, OnnxSegmenter
from chain.stages.torch_segmenter import TorchSegmenter
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def voc_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    return save_imported(tflite, tmp_path_factory.mktemp("weights") / "deeplab-mnv2-voc", label_space="voc")


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


def test_a_few_frame_graphs_are_kept(voc_checkpoint: Path) -> None:
    segmenter = _segmenter(voc_checkpoint, size="33")
    for side in range(20, 20 + MAX_FRAME_GRAPHS + 2):  # as the UI's previews of videos of many sizes
        segmenter.segment(np.zeros((1, side, side, 3), np.uint8), indices=np.arange(1))
    assert [size for size, _ in segmenter._frame_graphs] == [(side, side) for side in range(22, 22 + MAX_FRAME_GRAPHS)]


def test_the_export_is_cached_in_chains_weights_folder_and_reused(voc_checkpoint: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    before = sorted(voc_checkpoint.parent.iterdir())
    frames = np.random.default_rng(0).integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)
    _segmenter(voc_checkpoint, size="33").segment(frames, indices=np.arange(1))
    assert sorted(voc_checkpoint.parent.iterdir()) == before  # nothing written beside the user's checkpoint
    cache = tmp_path / "weights" / "onnx"
    (exported,) = cache.glob("deeplab-mnv2-voc-*-33x33-features.onnx")
    assert [p.name for p in cache.iterdir() if ".partial-" in p.name] == []  # staging left nothing behind
    written = exported.stat().st_mtime_ns
    _segmenter(voc_checkpoint, size="33").segment(frames, indices=np.arange(1))
    assert exported.stat().st_mtime_ns == written


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
