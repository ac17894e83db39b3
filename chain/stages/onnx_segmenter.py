"""A `TorchSegmenter` whose network runs in ONNX Runtime on the CPU.

The network's ``feature_logits`` (its logits before the final resize to the input size) are
exported once per input size with ``torch.onnx.export`` to a cache file
in ``onnx/`` next to the checkpoint folder (``$CHAIN_WEIGHTS/onnx/`` when that is not writable),
named after the checkpoint and keyed by its weights' path, size and time (a re-imported
checkpoint is exported again), written atomically through
`chain.media.targets` staging. Preprocessing and channel order are `TorchSegmenter`'s.
`segment` takes labels straight from the feature logits through both resizes (to the input
size, then to the frame's) with `chain.stages.resized_argmax`, which interpolates class scores
only near class boundaries; `scores` (for probabilities and smoothing) resizes them as the
network does. ONNX Runtime's idle threads do not spin: spinning workers collapse when another
process holds a core (benchmarks/cpu_segmenter_speed.py).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chain.errors import ChainError
from chain.media.targets import staging_path
from chain.stages.resized_argmax import resized_argmax
from chain.stages.torch_segmenter import TorchSegmenter
from chain.weights.folder import weights_dir


def onnx_cache_file(checkpoint: Path, size: tuple[int, int]) -> Path:
    """Where the export of ``checkpoint``'s network at input ``size`` is cached."""
    stamp = hashlib.sha1()
    for weights in sorted(checkpoint.glob("*.safetensors")):
        info = weights.stat()
        stamp.update(f"{weights.resolve()}:{info.st_size}:{info.st_mtime_ns};".encode())
    # In chain's own folder, never beside a checkpoint the user keeps elsewhere (their folder is
    # theirs); the stamp tells apart checkpoints of the same name.
    return weights_dir() / "onnx" / f"{checkpoint.name}-{stamp.hexdigest()[:12]}-{size[0]}x{size[1]}-features.onnx"


class _FeatureLogits(torch.nn.Module):
    """``network.feature_logits`` as a module's forward, for the exporter."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.feature_logits(pixels)


def export_onnx(network: torch.nn.Module, target: Path, size: tuple[int, int]) -> Path:
    """Export ``network.feature_logits`` (float, batch axis free) at input ``size`` to ``target``,
    unless it is there."""
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ChainError(f"cannot make the ONNX cache folder {target.parent}: {error.strerror}; set $CHAIN_WEIGHTS "
                         "to a writable folder or use --seg-opt backend=torch") from None
    staging = staging_path(target)
    example = torch.zeros(1, 3, *size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python (TF "SAME" padding)
            torch.onnx.export(_FeatureLogits(network), (example,), str(staging),
                              input_names=["pixels"], output_names=["logits"], dynamo=False,
                              dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


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
        channels = self._channel_to_label.cpu().numpy() if self._channel_to_label is not None else None
        self._labels_of_channels = np.asarray(
            channels if channels is not None else np.arange(len(self.label_space)), dtype=np.int64)
        self.description += ", ONNX Runtime"

    def compile(self) -> bool:
        return False  # ONNX Runtime runs the network: torch.compile has nothing to do

    def _session(self, size: tuple[int, int]) -> Any:
        if size not in self._sessions:
            path = export_onnx(self.network, onnx_cache_file(self._checkpoint, size), size)
            options = self._runtime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            # Idle workers sleep instead of spinning: a spinning pool fell to half speed with one
            # core busy elsewhere (benchmarks/cpu_segmenter_speed.py), sleeping costs little idle.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[size] = self._runtime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"])
        return self._sessions[size]

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
        pixels = self._network_input(frames)
        logits = self._feature_logits(pixels)  # the network once; each size from its logits
        network_size = (tuple(pixels.shape[-2:]), self.network.config.align_corners)
        return [torch.from_numpy(self._labels_of_channels[resized_argmax(logits, [network_size, (tuple(size), False)])])
                for size in sizes]
