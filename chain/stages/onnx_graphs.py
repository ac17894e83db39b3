"""The ONNX graphs `OnnxSegmenter` runs.

- The network's ``feature_logits`` (its logits before the final resize to the input size),
  exported once per input size with ``torch.onnx.export`` to a cache file in chain's weights
  folder, named after the checkpoint and keyed by a digest of its config and weights (the same
  network imported again, anywhere, reuses its export; a changed one gets its own), and verified
  by a digest of its own bytes when read (`chain.stages.onnx_cache`: a bad one is made again).
- Per frame size, in memory, that export with the steps around it merged in
  (`onnx.compose.merge_models`), so that ONNX Runtime's threads run them too and a frame costs one
  call: the preprocessing (`NetworkInput`) for frames it enlarges (shrinking antialiases, which
  the exporter cannot express), and the labels (`ResizedLabels`) when there are few output
  values. A 176x144 frame of deeplab-mnv2 VOC: 8.8 → 5.1 ms on 2 cores
  (benchmarks/cpu_segmenter_speed.py).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import compose

from chain.stages.onnx_cache import cached_export
from chain.stages.resized_argmax import Resize, resize_matrix
from chain.weights.locations import CONFIG_FILE, weights_dir

#: Class scores × output pixels (summed over the sizes asked for) up to which the labels are
#: computed in the graph, densely; above it `resized_argmax` (interpolating only near class
#: boundaries) is faster. Measured crossover for 21 classes on 2 cores: about 2M values, 95k
#: pixels (dense 1.6 against 1.8 ms at 342x256, 3.6 against 1.6 ms at 480x480).
DENSE_LABEL_VALUES = 2_000_000


def checkpoint_stamp(checkpoint: Path) -> str:
    """A digest of ``checkpoint``'s config and weights files, which name its exports.

    By content, not path and time: keyed by those, every import of the same file into a new
    folder (each test session, each benchmark run) left another export behind for good.
    """
    digest = hashlib.sha1()
    for file in sorted([*checkpoint.glob("*.safetensors"), checkpoint / CONFIG_FILE]):
        if file.is_file():
            digest.update(file.name.encode())
            with file.open("rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):  # noqa: B023 (the loop's own stream)
                    digest.update(block)
    return digest.hexdigest()[:12]


def onnx_cache_file(checkpoint: Path, size: tuple[int, int], stamp: str) -> Path:
    """Where the export of ``checkpoint``'s network at input ``size`` is cached (``stamp``: `checkpoint_stamp`)."""
    # In chain's own folder, never beside a checkpoint the user keeps elsewhere (their folder is
    # theirs); the stamp tells apart checkpoints of the same name.
    return weights_dir() / "onnx" / f"{checkpoint.name}-{stamp}-{size[0]}x{size[1]}-features.onnx"


class _FeatureLogits(torch.nn.Module):
    """``network.feature_logits`` as a module's forward, for the exporter."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.feature_logits(pixels)


def _export(module: torch.nn.Module, example: torch.Tensor, target: Path | io.BytesIO, *, input_name: str,
            output_names: list[str], opset: int | None = None) -> None:
    """``torch.onnx.export`` of ``module`` with its batch axis free."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python (TF "SAME" padding)
        torch.onnx.export(module, (example,), target if isinstance(target, io.BytesIO) else str(target),
                          input_names=[input_name], output_names=output_names, dynamo=False, opset_version=opset,
                          dynamic_axes={name: {0: "batch"} for name in [input_name, *output_names]})


def export_onnx(network: torch.nn.Module, target: Path, size: tuple[int, int]) -> bytes:
    """``network.feature_logits`` (float, batch axis free; input ``pixels``, output ``logits``) at
    input ``size`` as ONNX bytes, from chain's cache under ``target``'s name (`chain.stages.onnx_cache`:
    verified when read, made again and stored when missing or bad)."""
    def export() -> bytes:
        buffer = io.BytesIO()
        _export(_FeatureLogits(network), torch.zeros(1, 3, *size), buffer, input_name="pixels", output_names=["logits"])
        return buffer.getvalue()

    return cached_export(target, export)


class ResizedLabels(torch.nn.Module):
    """Feature logits ``(B, C, h, w)`` → label ids ``(B, H, W)`` (int64) at each of several sizes.

    Each size's chain of bilinear resizes is one matrix per axis (`resize_matrix`), then the best
    channel, then its label id. The same labels as `resized_argmax` up to float rounding in near-ties.

    Args:
        feature_size: ``(h, w)`` of the logits.
        resizes: per output size, the resizes from the logits to it (the network's own, then chain's).
        labels_of_channels: ``(C,)`` label id of each logit channel.
    """

    def __init__(self, *, feature_size: tuple[int, int], resizes: list[list[Resize]],
                 labels_of_channels: np.ndarray) -> None:
        super().__init__()
        self.rows = torch.nn.ParameterList()  # frozen parameters in lists: the graph's constants
        self.columns = torch.nn.ParameterList()
        for steps in resizes:
            self.rows.append(torch.nn.Parameter(
                torch.from_numpy(resize_matrix(steps, 0, feature_size[0]).astype(np.float32)), requires_grad=False))
            self.columns.append(torch.nn.Parameter(
                torch.from_numpy(resize_matrix(steps, 1, feature_size[1]).T.astype(np.float32)), requires_grad=False))
        identity = np.array_equal(labels_of_channels, np.arange(len(labels_of_channels)))
        # None when channel c is label c (VOC): the lookup would cost a third of the labels' time.
        self.labels_of_channels = None if identity else torch.as_tensor(labels_of_channels, dtype=torch.int64)

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        channels = [(rows @ logits @ columns).argmax(dim=1) for rows, columns in zip(self.rows, self.columns)]
        return tuple(channels if self.labels_of_channels is None else (self.labels_of_channels[c] for c in channels))


def frame_graph(features: bytes, *, network_input: torch.nn.Module | None, frame_size: tuple[int, int],
                label_resizes: list[list[Resize]] | None, feature_size: tuple[int, int] | None,
                labels_of_channels: np.ndarray) -> onnx.ModelProto:
    """The exported network ``features`` with ``network_input`` (uint8 frames → pixels, at
    ``frame_size``) merged before it and `ResizedLabels` (logits of ``feature_size``, one channel
    per entry of ``labels_of_channels`` → label ids, one output per entry of ``label_resizes``) after.

    Either end may be None: the graph then takes pixels or gives logits. Its one input and its
    outputs are in that order; their names carry the merge's prefixes.
    """
    model = onnx.load_from_string(features)
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))

    def exported(module: torch.nn.Module, example: torch.Tensor, input_name: str, outputs: list[str]) -> onnx.ModelProto:
        buffer = io.BytesIO()
        _export(module, example, buffer, input_name=input_name, output_names=outputs, opset=opset)
        part = onnx.load_from_string(buffer.getvalue())
        part.ir_version = model.ir_version  # merge_models wants equal versions; the features file may be older
        return part

    if network_input is not None:
        before = exported(network_input, torch.zeros(1, *frame_size, 3, dtype=torch.uint8), "frames", ["pixels"])
        model = compose.merge_models(before, model, io_map=[("pixels", "pixels")], prefix1="input/")
    if label_resizes is not None:  # feature_size is given with them
        labels = ResizedLabels(feature_size=feature_size, resizes=label_resizes, labels_of_channels=labels_of_channels)
        after = exported(labels, torch.zeros(1, len(labels_of_channels), *feature_size), "logits",
                         [f"labels{i}" for i in range(len(label_resizes))])
        model = compose.merge_models(model, after, io_map=[("logits", "logits")], prefix2="labels/")
    return model
