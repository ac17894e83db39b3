"""A `TorchSegmenter` whose network runs in ONNX Runtime on the CPU.

The torch network is exported once per input size with ``torch.onnx.export`` to a cache file
in ``onnx/`` next to the checkpoint folder (``$CHAIN_WEIGHTS/onnx/`` when that is not writable),
named after the checkpoint and keyed by its weights' path, size and time (a re-imported
checkpoint is exported again), written atomically through
`chain.media.targets` staging. Preprocessing, channel order and labels are `TorchSegmenter`'s:
only the network call differs. On this project's 2-core CPU ONNX Runtime ran the deeplab-mnv2
port about 2x faster than torch at one thread (benchmarks/cpu_segmenter_speed.py).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError
from chain.media.targets import staging_path
from chain.stages.torch_segmenter import TorchSegmenter
from chain.weights.folder import weights_dir


def onnx_cache_file(checkpoint: Path, size: tuple[int, int]) -> Path:
    """Where the export of ``checkpoint``'s network at input ``size`` is cached."""
    stamp = hashlib.sha1()
    for weights in sorted(checkpoint.glob("*.safetensors")):
        info = weights.stat()
        stamp.update(f"{weights.resolve()}:{info.st_size}:{info.st_mtime_ns};".encode())
    beside = checkpoint.resolve().parent
    folder = beside / "onnx" if os.access(beside, os.W_OK) else weights_dir() / "onnx"
    return folder / f"{checkpoint.name}-{stamp.hexdigest()[:12]}-{size[0]}x{size[1]}.onnx"


def export_onnx(network: torch.nn.Module, target: Path, size: tuple[int, int]) -> Path:
    """Export ``network`` (float, batch axis free) at input ``size`` to ``target``, unless it is there."""
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
            torch.onnx.export(network, (example,), str(staging),
                              input_names=["pixels"], output_names=["logits"], dynamo=False,
                              dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


class OnnxSegmenter(TorchSegmenter):
    """`TorchSegmenter` with the network run by ONNX Runtime (CPU).

    Args:
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
        self.description += ", ONNX Runtime"

    def compile(self) -> bool:
        return False  # ONNX Runtime runs the network: torch.compile has nothing to do

    def _session(self, size: tuple[int, int]) -> Any:
        if size not in self._sessions:
            path = export_onnx(self.network, onnx_cache_file(self._checkpoint, size), size)
            options = self._runtime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            self._sessions[size] = self._runtime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"])
        return self._sessions[size]

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        session = self._session(tuple(pixels.shape[-2:]))
        (logits,) = session.run(None, {"pixels": pixels.contiguous().numpy()})
        return torch.from_numpy(logits)
