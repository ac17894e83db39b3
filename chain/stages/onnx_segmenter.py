"""A `TorchSegmenter` whose network runs in ONNX Runtime on the CPU.

The network is exported once per input size and cached (`chain.stages.onnx_graphs`). `segment`
runs, per frame size and sizes asked for, one graph: the preprocessing is in it when frames are
enlarged, and the labels when there are few output values (`DENSE_LABEL_VALUES`); otherwise
preprocessing is `TorchSegmenter`'s and labels come from the feature logits through both resizes
(to the input size, then the frame's) by `chain.stages.resized_argmax`, which interpolates class
scores only near class boundaries. `scores` (for probabilities and smoothing) resizes them as the
network does. ONNX Runtime's idle threads spin only briefly (`SPINNING`): unbounded spinning
collapses when another process holds a core (benchmarks/cpu_segmenter_speed.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chain.errors import ChainError
from chain.stages.onnx_graphs import DENSE_LABEL_VALUES, checkpoint_stamp, export_onnx, frame_graph, onnx_cache_file
from chain.stages.resized_argmax import Resize, resized_argmax
from chain.stages.torch_segmenter import TorchSegmenter

#: ONNX Runtime's settings for its idle workers (``spin_duration_us``: ONNX Runtime 1.26 and later).
SPINNING = {"session.intra_op.allow_spinning": "1", "session.intra_op.spin_duration_us": "20"}
#: Without the bound (older ONNX Runtime, which ignores unknown keys), workers sleep at once.
SLEEPING = {"session.intra_op.allow_spinning": "0"}
#: Frame graphs kept at once (each holds a copy of the network's weights).
MAX_FRAME_GRAPHS = 4


def waiting_settings(version: str) -> dict[str, str]:
    """`SPINNING` where ONNX Runtime ``version`` bounds the spin (1.26 and later), else `SLEEPING`."""
    release = tuple(int(number) for number in re.findall(r"\d+", version)[:2])
    return SPINNING if release >= (1, 26) else SLEEPING


@dataclass(frozen=True)
class _FrameGraph:
    """A session for one frame size and list of label sizes, and which ends of the work it holds."""

    session: Any
    input_name: str
    takes_frames: bool  # else the pixels `TorchSegmenter._network_input` makes
    gives_labels: bool  # else the feature logits


class OnnxSegmenter(TorchSegmenter):
    """`TorchSegmenter` with the network run by ONNX Runtime (CPU).

    Args:
        network: as `TorchSegmenter`'s, with a ``feature_logits`` method (the logits before
            their final bilinear resize) and ``config.align_corners`` (that resize's).
        checkpoint: the checkpoint folder the network was loaded from (names the cache file).
        threads: ONNX Runtime's intra-op threads (`chain.device.onnx_threads`; 0: its default).
        Others: as `TorchSegmenter`; ``device`` must be the CPU.
    """

    def __init__(self, network: torch.nn.Module, *, checkpoint: Path, threads: int = 0, **kwargs: Any) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ChainError("--seg-opt backend=onnx needs the 'onnxruntime' package: pip install onnxruntime, "
                             "or use backend=torch") from None
        super().__init__(network, **kwargs)
        if self.device.type != "cpu":
            raise ChainError(f"--seg-opt backend=onnx runs on the CPU, not --device {self.device}; "
                             "use backend=torch there")
        self._runtime = onnxruntime
        self._checkpoint = checkpoint
        self._threads = threads
        self._sessions: dict[tuple[int, int], Any] = {}
        self._exports: dict[tuple[int, int], bytes] = {}
        self._frame_graphs: dict[tuple[tuple[int, int], tuple[tuple[int, int], ...]], _FrameGraph] = {}
        channels = self._channel_to_label.cpu().numpy() if self._channel_to_label is not None else None
        self._labels_of_channels = np.asarray(
            channels if channels is not None else np.arange(len(self.label_space)), dtype=np.int64)
        self.description += ", ONNX Runtime"

    def compile(self) -> bool:
        return False  # ONNX Runtime runs the network: torch.compile has nothing to do

    def _new_session(self, model: str | bytes) -> Any:
        options = self._runtime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Idle workers spin 20 us, then sleep. Spinning without a bound fell to half speed with one
        # core busy elsewhere; never spinning lost 15 % idle, waking a worker for each of the
        # network's ~60 parallel steps (benchmarks/cpu_segmenter_speed.py).
        for key, value in waiting_settings(self._runtime.__version__).items():
            options.add_session_config_entry(key, value)
        return self._runtime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def _session(self, size: tuple[int, int]) -> Any:
        """The exported network alone, at input ``size``: pixels → feature logits."""
        if size not in self._sessions:
            self._sessions[size] = self._new_session(self._export(size))
        return self._sessions[size]

    @functools.cached_property
    def _stamp(self) -> str:
        return checkpoint_stamp(self._checkpoint)  # read once, when the first export is looked for

    def _export(self, size: tuple[int, int]) -> bytes:
        """The exported network at input ``size`` (read and verified once per size)."""
        if size not in self._exports:
            if len(self._exports) >= MAX_FRAME_GRAPHS:  # fit=aspect in the UI: an input size per video's shape
                del self._exports[next(iter(self._exports))]
            self._exports[size] = export_onnx(self.network, onnx_cache_file(self._checkpoint, size, self._stamp), size)
        return self._exports[size]

    def _frame_graph(self, frame_size: tuple[int, int], sizes: tuple[tuple[int, int], ...]) -> _FrameGraph:
        """The graph for frames of ``frame_size`` and labels at ``sizes`` (`chain.stages.onnx_graphs`).

        The `MAX_FRAME_GRAPHS` used last are kept. Not thread-safe: a run segments in one thread,
        and the UI's previewer holds a lock.
        """
        key = (frame_size, sizes)
        if key in self._frame_graphs:
            self._frame_graphs[key] = self._frame_graphs.pop(key)  # now the most recently used
            return self._frame_graphs[key]
        network_resize = self._network_resize(frame_size)
        input_size = network_resize[0]
        takes_frames = not self.network_input.shrinks(*frame_size)
        gives_labels = len(self._labels_of_channels) * sum(h * w for h, w in sizes) <= DENSE_LABEL_VALUES
        if takes_frames or gives_labels:
            model = frame_graph(
                self._export(input_size), network_input=self.network_input if takes_frames else None,
                frame_size=frame_size, feature_size=self._feature_size(input_size) if gives_labels else None,
                labels_of_channels=self._labels_of_channels,
                label_resizes=[[network_resize, (size, False)] for size in sizes] if gives_labels else None)
            session = self._new_session(model.SerializeToString())
        else:
            session = self._session(input_size)
        if len(self._frame_graphs) >= MAX_FRAME_GRAPHS:  # the UI previews many sizes: drop the least recent
            del self._frame_graphs[next(iter(self._frame_graphs))]
        self._frame_graphs[key] = _FrameGraph(session, session.get_inputs()[0].name, takes_frames, gives_labels)
        return self._frame_graphs[key]

    def _network_resize(self, frame_size: tuple[int, int]) -> Resize:
        """The network's own resize of its feature logits, to its input size for frames of ``frame_size``."""
        return self.network_input.size_for(*frame_size), self.network.config.align_corners

    @torch.inference_mode()
    def _feature_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """The feature logits' ``(h, w)`` for input ``input_size`` (the exporter cannot always tell)."""
        pixels = torch.zeros(1, 3, *input_size, device=self.device).contiguous(memory_format=torch.channels_last)
        return tuple(self.network.feature_logits(pixels).shape[-2:])

    def _feature_logits(self, pixels: torch.Tensor) -> np.ndarray:
        session = self._session(tuple(pixels.shape[-2:]))
        (logits,) = session.run(None, {"pixels": pixels.contiguous().numpy()})
        return logits

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = torch.from_numpy(self._feature_logits(pixels))
        if tuple(logits.shape[-2:]) == tuple(pixels.shape[-2:]):
            return logits
        return F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear",
                             align_corners=self.network.config.align_corners)

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.segment_sizes(frames, indices=indices, sizes=[size or frames.shape[1:3]])[0]

    @torch.inference_mode()
    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        if not sizes:
            return []
        sizes = [tuple(size) for size in sizes]
        graph = self._frame_graph(tuple(frames.shape[1:3]), tuple(sizes))
        pixels = None if graph.takes_frames else self._network_input(frames)
        feed = np.ascontiguousarray(frames) if pixels is None else pixels.contiguous().numpy()
        outputs = graph.session.run(None, {graph.input_name: feed})  # the network once
        if graph.gives_labels:
            return [torch.from_numpy(labels) for labels in outputs]
        network_resize = self._network_resize(tuple(frames.shape[1:3]))
        return [torch.from_numpy(self._labels_of_channels[resized_argmax(outputs[0], [network_resize, (size, False)])])
                for size in sizes]
