"""Import DeepLabV3-MobileNetV2 TF Lite files into our torch port and checkpoint format.

The graph is read, not assumed: the operators are walked in order, TF Lite's fusions are
undone into plain convolutions, and the result is matched against the DeepLab + MobileNetV2
family that `models.deeplab_mnv2` implements; the config comes from what the walk finds and
every conv's shape, stride and dilation is checked against the torch module built from it.
Anything outside that family stops the import with a `ChainError` naming the operator.
Only the importer needs the ``tflite`` package (the flatbuffer schema); running the
imported network needs torch only.

TF Lite details undone here: conv kernels are ``OHWI`` and depthwise kernels ``1HWC``
(torch wants ``OIHW`` and ``C1HW``); int8 / float16 constants are dequantized (a conv that
reads an int8 kernel directly is "hybrid": the runtime quantizes its input to int8 on the
fly, so its kernel scales go into the config's ``hybrid_weight_scales``, which the port
can emulate; kernels behind a ``DEQUANTIZE`` operator are plain float convs); a dilated
depthwise conv may appear as ``SPACE_TO_BATCH_ND`` -> VALID depthwise ->
``BATCH_TO_SPACE_ND`` -> ``MUL`` -> ``ADD`` (its batch norm left unfolded), which is
refolded into one dilated conv with a bias.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chain.errors import ChainError
from chain.weights.deeplab_mnv2 import save_deeplab_mnv2
from chain.weights.fit import conform_tensors
from models.deeplab_mnv2 import STEM_CHANNELS, DeepLabMNv2, DeepLabMNv2Config

# How each label space reads the output channels: channel k is label id
# (k + offset) mod num_classes. The ADE20K file puts "other" first; our ade20k space
# keeps the 150 classes at 0..149 and "other" at 150.
LABEL_OFFSETS = {"voc": 0, "ade20k": -1}
LABEL_CHANNELS = {"voc": 21, "ade20k": 151}

_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}


def _fail(path: Path, reason: str) -> ChainError:
    return ChainError(f"{path} is not a DeepLabV3-MobileNetV2 graph chain can import: {reason}")


def dequantize_constant(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """A weight-only quantized constant as the runtime reads it: ``(q - zero) * scale``,
    per tensor or per channel along ``axis``; float32."""
    shape = [1] * values.ndim
    if scale.size > 1:
        shape[axis] = -1
    zero = 0 if zero_point is None or zero_point.size == 0 else zero_point.reshape(shape)
    return ((values.astype(np.float32) - zero) * scale.astype(np.float32).reshape(shape)).astype(np.float32)


# --- Reading: flatbuffer operators -> plain nodes -------------------------------------------


@dataclass
class _Node:
    """One operator after fusions are undone; ``inputs`` are activation tensor ids only."""

    kind: str  # conv | depthwise | add | pool | resize | concat
    op_index: int
    inputs: list[int]
    output: int
    weight: np.ndarray | None = None  # torch layout, float32
    bias: np.ndarray | None = None
    stride: int = 1
    dilation: int = 1
    activation: str = "none"
    align_corners: bool = False
    half_pixel_centers: bool = False
    weight_scale: list[float] | None = None  # a hybrid conv's int8 kernel scale(s)

    def describe(self) -> str:
        return f"operator {self.op_index} ({self.kind})"


@dataclass
class _Graph:
    nodes: list[_Node]
    shapes: dict[int, tuple[int, ...]]
    input: int
    output: int
    producer: dict[int, _Node] = field(default_factory=dict)
    consumers: dict[int, list[_Node]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes:
            self.producer[node.output] = node
            for tensor in node.inputs:
                self.consumers.setdefault(tensor, []).append(node)

    def spatial(self, tensor: int) -> tuple[int, int]:
        return self.shapes[tensor][1], self.shapes[tensor][2]


@dataclass
class _Op:
    """A flatbuffer operator about to be read: its name and tensors (aliases resolved)."""

    index: int
    name: str
    inputs: list[int]
    output: int
    table: Any  # the flatbuffer Operator, for its options

    def where(self) -> str:
        return f"operator {self.index} ({self.name})"


class _Reader:
    """Turns the flatbuffer's operators into `_Node`s, undoing TF Lite's fusions."""

    def __init__(self, path: Path) -> None:
        try:
            import tflite
        except ImportError as error:
            raise ChainError("importing TF Lite files needs the 'tflite' package: pip install tflite") from error
        self.tflite, self.path = tflite, path
        try:
            self.model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
            subgraphs = self.model.SubgraphsLength()
        except Exception as error:
            raise _fail(path, f"not a TF Lite flatbuffer ({error})") from error
        if subgraphs != 1:
            raise _fail(path, f"{subgraphs} subgraphs, expected 1")
        self.graph = self.model.Subgraphs(0)
        self.shapes = {
            i: tuple(int(d) for d in self.graph.Tensors(i).ShapeAsNumpy()) if self.graph.Tensors(i).ShapeLength() else ()
            for i in range(self.graph.TensorsLength())
        }
        self.constants: dict[int, np.ndarray] = {}
        self.alias: dict[int, int] = {}  # outputs of no-op operators -> their input
        self.space_to_batch: dict[int, tuple[int, int, np.ndarray]] = {}  # out -> (input, block, paddings)
        self.producer: dict[int, _Node] = {}  # current output tensor -> node (moves as fusions fold in)
        self.nodes: list[_Node] = []

    def fail(self, reason: str) -> ChainError:
        return _fail(self.path, reason)

    def read(self) -> _Graph:
        tflite = self.tflite
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        handlers: dict[str, Callable[[_Op], None]] = {
            "DEQUANTIZE": self.dequantize,
            "CONV_2D": self.conv,
            "DEPTHWISE_CONV_2D": self.conv,
            "SPACE_TO_BATCH_ND": self.space_to_batch_nd,
            "BATCH_TO_SPACE_ND": self.batch_to_space_nd,
            "MUL": self.mul,
            "ADD": self.add,
            "AVERAGE_POOL_2D": self.average_pool,
            "MEAN": self.mean,
            "RESIZE_BILINEAR": self.resize_bilinear,
            "CONCATENATION": self.concatenation,
        }
        for index in range(self.graph.OperatorsLength()):
            table = self.graph.Operators(index)
            code = self.model.OperatorCodes(table.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            if name not in handlers:
                raise self.fail(f"operator {index} is {name}, which DeepLabV3-MobileNetV2 does not use")
            inputs = [self.alias.get(int(i), int(i)) for i in table.InputsAsNumpy() if i >= 0]
            handlers[name](_Op(index, name, inputs, int(table.Outputs(0)), table))

        if self.graph.InputsLength() != 1 or self.graph.OutputsLength() != 1:
            raise self.fail("expected exactly one input and one output tensor")
        if self.space_to_batch or any(node.activation == "unclosed" for node in self.nodes):
            raise self.fail("a SPACE_TO_BATCH_ND pattern is left open")
        output = int(self.graph.Outputs(0))
        return _Graph(self.nodes, self.shapes, int(self.graph.Inputs(0)), self.alias.get(output, output))

    # -- helpers

    def constant(self, index: int) -> np.ndarray | None:
        """The tensor's constant value (dequantized to float32), or None for an activation."""
        if index in self.constants:
            return self.constants[index]
        types = {
            self.tflite.TensorType.FLOAT32: np.float32,
            self.tflite.TensorType.FLOAT16: np.float16,
            self.tflite.TensorType.INT32: np.int32,
            self.tflite.TensorType.INT64: np.int64,
            self.tflite.TensorType.INT8: np.int8,
            self.tflite.TensorType.UINT8: np.uint8,
        }
        tensor = self.graph.Tensors(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        if tensor.Type() not in types:
            raise self.fail(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
        values = np.frombuffer(data.tobytes(), types[tensor.Type()]).reshape(self.shapes[index])
        quant = tensor.Quantization()
        if values.dtype in (np.int8, np.uint8) and quant is not None and quant.ScaleLength():
            zero = quant.ZeroPointAsNumpy() if quant.ZeroPointLength() else None
            values = dequantize_constant(values, quant.ScaleAsNumpy(), zero, quant.QuantizedDimension())
        self.constants[index] = values.astype(np.float32) if values.dtype.kind == "f" else values
        return self.constants[index]

    def hybrid_scale(self, index: int, depthwise: bool) -> list[float] | None:
        """The scale(s) of a kernel the conv reads as int8 itself (a hybrid conv), else None.

        Only symmetric kernels (zero point 0) quantized per tensor or per output channel
        are hybrid in the sense the port emulates; anything else is read as float.
        """
        tensor = self.graph.Tensors(index)
        quant = tensor.Quantization()
        if tensor.Type() != self.tflite.TensorType.INT8 or quant is None or not quant.ScaleLength():
            return None
        if quant.ZeroPointLength() and quant.ZeroPointAsNumpy().any():
            return None
        scales = quant.ScaleAsNumpy().astype(np.float32)
        if scales.size > 1 and quant.QuantizedDimension() != (3 if depthwise else 0):
            return None
        return [float(v) for v in scales]

    def options(self, op: _Op, cls: type) -> Any:
        table = op.table.BuiltinOptions()
        parsed = cls()
        parsed.Init(table.Bytes, table.Pos)
        return parsed

    def emit(self, node: _Node) -> None:
        self.nodes.append(node)
        self.producer[node.output] = node

    def linear_conv_before(self, op: _Op) -> _Node:
        """The conv whose output ``op`` reads, which must not have an activation yet."""
        node = self.producer.pop(op.inputs[0], None)
        if node is None or node.kind not in ("conv", "depthwise") or node.activation != "none":
            raise self.fail(f"{op.where()} does not follow a linear convolution")
        return node

    # -- one method per operator

    def dequantize(self, op: _Op) -> None:
        values = self.constant(op.inputs[0])
        if values is None:
            raise self.fail(f"{op.where()} dequantizes an activation, not a weight")
        self.constants[op.output] = values.astype(np.float32)

    def conv(self, op: _Op) -> None:
        tflite = self.tflite
        depthwise = op.name == "DEPTHWISE_CONV_2D"
        opts = self.options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        kernel = self.constant(op.inputs[1])
        if kernel is None or self.constant(op.inputs[0]) is not None:
            raise self.fail(f"{op.where()} is not an activation convolved with a constant kernel")
        if opts.StrideH() != opts.StrideW() or opts.DilationHFactor() != opts.DilationWFactor():
            raise self.fail(f"{op.where()} has unequal strides or dilations")
        if depthwise:
            if kernel.shape[3] != self.shapes[op.inputs[0]][3]:
                raise self.fail(f"{op.where()} has a depth multiplier, which MobileNetV2 never uses")
            weight = kernel[0].transpose(2, 0, 1)[:, None]  # 1HWC -> C1HW
        else:
            weight = kernel.transpose(0, 3, 1, 2)  # OHWI -> OIHW
        bias = self.constant(op.inputs[2]) if len(op.inputs) > 2 else None
        weight_scale = self.hybrid_scale(op.inputs[1], depthwise)
        node = _Node(
            kind="depthwise" if depthwise else "conv",
            op_index=op.index,
            inputs=[op.inputs[0]],
            output=op.output,
            weight=np.ascontiguousarray(weight, dtype=np.float32),
            bias=np.zeros(weight.shape[0], np.float32) if bias is None else bias.astype(np.float32),
            stride=opts.StrideH(),
            dilation=opts.DilationHFactor(),
            activation=_ACTIVATIONS.get(opts.FusedActivationFunction(), "unknown"),
            weight_scale=weight_scale,
        )
        if op.inputs[0] in self.space_to_batch:
            if not depthwise or opts.Padding() != tflite.Padding.VALID or node.stride != 1:
                raise self.fail(f"{op.where()}: SPACE_TO_BATCH_ND feeds something other than a VALID depthwise conv")
            source, block, paddings = self.space_to_batch.pop(op.inputs[0])
            # Padding the dilated kernel's half-reach before, with BATCH_TO_SPACE_ND cropping
            # nothing before and restoring the size, is 'SAME' at that rate; the extra
            # padding after only makes the size divisible by the block.
            reach = block * (weight.shape[-1] - 1) // 2
            if paddings[0, 0] != reach or paddings[1, 0] != reach:
                raise self.fail(f"{op.where()}: space-to-batch padding {paddings.tolist()} is not 'SAME' at rate {block}")
            node.inputs, node.dilation, node.activation = [source], block, "unclosed"
        elif opts.Padding() != tflite.Padding.SAME:
            raise self.fail(f"{op.where()} uses VALID padding; DeepLab convolutions are 'SAME'")
        self.emit(node)

    def space_to_batch_nd(self, op: _Op) -> None:
        block, paddings = self.constant(op.inputs[1]), self.constant(op.inputs[2])
        if block is None or paddings is None or len(set(block.tolist())) != 1:
            raise self.fail(f"{op.where()} has a non-square or dynamic block")
        self.space_to_batch[op.output] = (op.inputs[0], int(block[0]), paddings.reshape(2, 2))

    def batch_to_space_nd(self, op: _Op) -> None:
        node = self.producer.pop(op.inputs[0], None)
        crops = self.constant(op.inputs[2])
        if node is None or node.activation != "unclosed" or crops is None:
            raise self.fail(f"{op.where()} is not closing a dilated depthwise conv")
        if crops.reshape(2, 2)[:, 0].any() or self.shapes[op.output][1:3] != self.shapes[node.inputs[0]][1:3]:
            raise self.fail(f"{op.where()}: crops {crops.tolist()} do not restore the input layout")
        node.output, node.activation = op.output, "none"
        self.producer[op.output] = node

    def mul(self, op: _Op) -> None:
        scale = self.constant(op.inputs[1])
        node = self.linear_conv_before(op)
        if scale is None or scale.shape != node.bias.shape:
            raise self.fail(f"{op.where()} is only understood as a per-channel batch-norm scale")
        node.weight = node.weight * scale[:, None, None, None]
        node.bias = node.bias * scale
        if node.weight_scale is not None:  # int8 x (scale * mul) per channel: still hybrid
            base = np.broadcast_to(np.asarray(node.weight_scale, np.float32), scale.shape)
            node.weight_scale = [float(v) for v in (base * scale).astype(np.float32)]
        node.output = op.output
        self.producer[op.output] = node

    def add(self, op: _Op) -> None:
        activation = _ACTIVATIONS.get(self.options(op, self.tflite.AddOptions).FusedActivationFunction(), "unknown")
        offset = self.constant(op.inputs[1])
        if offset is None:  # two activations: a residual connection
            self.emit(_Node("add", op.index, op.inputs, op.output, activation=activation))
            return
        node = self.linear_conv_before(op)  # a batch-norm offset after an unfolded scale
        if offset.shape != node.bias.shape:
            raise self.fail(f"{op.where()} is only understood as a per-channel batch-norm offset")
        node.bias = node.bias + offset
        node.output, node.activation = op.output, activation
        self.producer[op.output] = node

    def average_pool(self, op: _Op) -> None:
        opts = self.options(op, self.tflite.Pool2DOptions)
        window = (opts.FilterHeight(), opts.FilterWidth())
        if window != self.shapes[op.inputs[0]][1:3] or self.shapes[op.output][1:3] != (1, 1):
            raise self.fail(f"{op.where()} is not a global pool")
        self.emit(_Node("pool", op.index, [op.inputs[0]], op.output))

    def mean(self, op: _Op) -> None:
        axes = self.constant(op.inputs[1])
        if axes is None or sorted(axes.tolist()) != [1, 2] or self.shapes[op.output][1:3] != (1, 1):
            raise self.fail(f"{op.where()} is not a global spatial pool")
        self.emit(_Node("pool", op.index, [op.inputs[0]], op.output))

    def resize_bilinear(self, op: _Op) -> None:
        if self.shapes[op.output][1:3] == self.shapes[op.inputs[0]][1:3]:
            self.alias[op.output] = op.inputs[0]  # same size: the identity in every resize mode
            return
        opts = self.options(op, self.tflite.ResizeBilinearOptions)
        self.emit(
            _Node(
                "resize",
                op.index,
                [op.inputs[0]],
                op.output,
                align_corners=bool(opts.AlignCorners()),
                half_pixel_centers=bool(opts.HalfPixelCenters()),
            )
        )

    def concatenation(self, op: _Op) -> None:
        opts = self.options(op, self.tflite.ConcatenationOptions)
        if opts.Axis() not in (3, -1) or opts.FusedActivationFunction() != 0:
            raise self.fail(f"{op.where()} is not along channels")
        self.emit(_Node("concat", op.index, [i for i in op.inputs if self.constant(i) is None], op.output))


# --- Matching: plain nodes -> DeepLabMNv2 config and module names ---------------------------


class _Matcher:
    """Walks a `_Graph` along the DeepLab-MobileNetV2 structure, naming each conv as the
    torch module that will hold its weights."""

    def __init__(self, path: Path, graph: _Graph) -> None:
        self.path, self.graph = path, graph
        self.weights: dict[str, _Node] = {}  # torch module name -> conv node
        self.residuals: list[bool] = []  # per MobileNetV2 unit: does the file add its input back
        self.depthwise_outputs: list[int] = []  # per unit, where the decoder may tap
        self.visited: set[int] = set()

    def fail(self, reason: str) -> ChainError:
        return _fail(self.path, reason)

    def take(self, node: _Node | None, name: str, kind: str, activation: str | None = None, kernel: int | None = None) -> _Node:
        """Check ``node`` is what the structure needs at ``name``; record its weights."""
        if node is None:
            raise self.fail(f"{name}: expected a {kind} operator, found none")
        if node.kind != kind:
            raise self.fail(f"{name}: expected {kind}, found {node.describe()}")
        if activation is not None and node.activation != activation:
            raise self.fail(f"{name}: {node.describe()} uses activation {node.activation}, expected {activation}")
        if kernel is not None and node.weight.shape[-1] != kernel:
            raise self.fail(f"{name}: {node.describe()} has a {node.weight.shape[-1]}x kernel, expected {kernel}x")
        self.visited.add(id(node))
        if node.weight is not None:
            self.weights[name] = node
        return node

    def consumers(self, tensor: int) -> list[_Node]:
        return self.graph.consumers.get(tensor, [])

    def only_consumer(self, tensor: int, name: str) -> _Node | None:
        found = self.consumers(tensor)
        if len(found) > 1:
            raise self.fail(f"{name}: tensor {tensor} feeds {len(found)} operators, expected one")
        return found[0] if found else None

    def match(self) -> tuple[DeepLabMNv2Config, dict[str, Any]]:
        """The config the graph implies, plus facts worth reporting."""
        graph = self.graph
        shape = graph.shapes[graph.input]
        if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            raise self.fail(f"input shape {list(shape)} is not 1xSxSx3")
        input_size = shape[1]

        stem = self.take(self.only_consumer(graph.input, "stem"), "stem", "conv", "relu6", 3)
        features, output_stride, dilations = self.backbone(stem)
        image_pooling, aspp_project = self.aspp(features)
        decoder, x = self.decoder(aspp_project.output)
        classifier = self.take(self.only_consumer(x, "classifier"), "classifier", "conv", "none", 1)
        final = self.take(self.only_consumer(classifier.output, "final resize"), "final resize", "resize")
        if final.output != graph.output or graph.spatial(final.output) != (input_size, input_size):
            raise self.fail("the logits are not resized straight to the input size as the graph output")

        unvisited = [n for n in graph.nodes if id(n) not in self.visited]
        if unvisited:
            raise self.fail(f"{unvisited[0].describe()} is not part of the DeepLab-MobileNetV2 structure")
        # Resizing a 1x1 map is a broadcast in every mode, so those do not count.
        modes = {(n.align_corners, n.half_pixel_centers) for n in graph.nodes if n.kind == "resize" and graph.spatial(n.inputs[0]) != (1, 1)}
        if len(modes) != 1 or next(iter(modes))[1]:
            raise self.fail(f"bilinear resizes mix modes or use half-pixel centers: {sorted(modes)}")

        config = DeepLabMNv2Config(
            num_classes=classifier.weight.shape[0],
            width_multiplier=stem.weight.shape[0] / STEM_CHANNELS,
            output_stride=output_stride,
            aspp_channels=aspp_project.weight.shape[0],
            image_pooling=image_pooling,
            align_corners=next(iter(modes))[0],
            input_size=input_size,
            hybrid_weight_scales={
                name: node.weight_scale for name, node in self.weights.items() if node.weight_scale is not None
            },
            **decoder,
        )
        return config, {"dilations": dilations, "feature_size": graph.spatial(features)[0]}

    def backbone(self, stem: _Node) -> tuple[int, int, list[int]]:
        """MobileNetV2 units after the stem: features tensor, output stride, unit dilations."""
        x, stride, dilations = stem.output, stem.stride, []
        while True:
            # A unit starts with a ReLU6 expand conv, or directly with its depthwise conv.
            starts = [n for n in self.consumers(x) if n.kind in ("conv", "depthwise") and n.activation == "relu6"]
            if not starts:
                return x, stride, dilations
            name, node = f"blocks.{len(dilations)}", starts[0]
            if node.kind == "conv":
                expand = self.take(node, f"{name}.expand", "conv", "relu6", 1)
                node = self.only_consumer(expand.output, f"{name}.depthwise")
            depthwise = self.take(node, f"{name}.depthwise", "depthwise", "relu6", 3)
            # The decoder may read the depthwise output too, so look for the linear conv.
            projects = [n for n in self.consumers(depthwise.output) if n.kind == "conv" and n.activation == "none"]
            project = self.take(projects[0] if projects else None, f"{name}.project", "conv", "none", 1)
            adds = [n for n in self.consumers(project.output) if n.kind == "add" and sorted(n.inputs) == sorted([x, project.output])]
            x = self.take(adds[0], f"{name}.add", "add", "none").output if adds else project.output
            self.residuals.append(bool(adds))
            self.depthwise_outputs.append(depthwise.output)
            dilations.append(depthwise.dilation)
            stride *= depthwise.stride

    def aspp(self, features: int) -> tuple[bool, _Node]:
        """The MobileNet ASPP: [image pooling,] a 1x1 conv, concatenated and projected."""
        branches: dict[str, int] = {}
        for node in self.consumers(features):
            if node.kind == "pool" and "pool" not in branches:
                self.take(node, "pool", "pool")
                conv = self.take(self.only_consumer(node.output, "pool_conv"), "pool_conv", "conv", "relu", 1)
                up = self.only_consumer(conv.output, "image pooling resize")
                branches["pool"] = self.take(up, "image pooling resize", "resize").output if up and up.kind == "resize" else conv.output
            elif node.kind == "conv" and node.weight.shape[-1] == 1 and "aspp" not in branches:
                branches["aspp"] = self.take(node, "aspp_conv", "conv", "relu", 1).output
            else:
                raise self.fail(
                    f"{node.describe()} reads the backbone features; only image pooling and one 1x1 ASPP "
                    "conv are supported (no atrous ASPP branches)"
                )
        if "aspp" not in branches:
            raise self.fail("no 1x1 ASPP conv reads the backbone features")
        x = branches["aspp"]
        if "pool" in branches:
            concat = self.take(self.only_consumer(x, "ASPP concat"), "ASPP concat", "concat")
            if concat.inputs != [branches["pool"], branches["aspp"]]:
                raise self.fail(f"{concat.describe()} does not concatenate image pooling then the 1x1 ASPP conv")
            x = concat.output
        return "pool" in branches, self.take(self.only_consumer(x, "aspp_project"), "aspp_project", "conv", "relu", 1)

    def decoder(self, x: int) -> tuple[dict[str, Any], int]:
        """The DeepLabV3+ decoder if there is one: its config fields and output tensor."""
        upsample = self.only_consumer(x, "after the ASPP")
        if upsample is None or upsample.kind != "resize":
            return {}, x
        self.take(upsample, "decoder upsample", "resize")
        concat = self.take(self.only_consumer(upsample.output, "decoder concat"), "decoder concat", "concat")
        if len(concat.inputs) != 2 or concat.inputs[0] != upsample.output:
            raise self.fail(f"{concat.describe()}: expected [upsampled ASPP output, low-level features]")
        low = concat.inputs[1]
        low_conv = self.take(self.graph.producer.get(low), "low_level", "conv", "relu", 1)
        if low_conv.inputs[0] not in self.depthwise_outputs:
            raise self.fail("the decoder's low-level features do not come from a MobileNetV2 depthwise output")
        if self.graph.spatial(upsample.output) != self.graph.spatial(low):
            raise self.fail("the decoder upsamples the ASPP output to a size other than the low-level features'")
        x, convs = concat.output, 0
        while (node := self.only_consumer(x, "decoder")) is not None and node.kind == "depthwise":
            depthwise = self.take(node, f"decoder_convs.{convs}.depthwise", "depthwise", "relu", 3)
            pointwise = self.only_consumer(depthwise.output, "decoder pointwise")
            x = self.take(pointwise, f"decoder_convs.{convs}.pointwise", "conv", "relu", 1).output
            convs += 1
        if convs == 0:
            raise self.fail("the decoder has no separable convs")
        found = {
            "decoder": True,
            "decoder_tap": self.depthwise_outputs.index(low_conv.inputs[0]),
            "decoder_low_level_channels": low_conv.weight.shape[0],
            "decoder_channels": self.weights[f"decoder_convs.{convs - 1}.pointwise"].weight.shape[0],
            "decoder_convs": convs,
        }
        return found, x


def _state_dict(path: Path, config: DeepLabMNv2Config, matcher: _Matcher) -> dict[str, torch.Tensor]:
    """The torch weights, after checking every conv and residual against the module for ``config``."""
    with torch.device("meta"):
        model = DeepLabMNv2(config)
    modules = dict(model.named_modules())
    state: dict[str, torch.Tensor] = {}
    for name, node in matcher.weights.items():
        module = modules.get(name)
        if module is None:
            raise _fail(path, f"{node.describe()} maps to {name}, which the network for {config} lacks")
        expected = (tuple(module.weight.shape), module.stride[0], module.dilation[0])
        found = (node.weight.shape, node.stride, node.dilation)
        if found != expected:
            raise _fail(path, f"{name}: the file has (shape, stride, dilation) {found}, the model {expected}")
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(node.weight, dtype=np.float32))
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(node.bias, dtype=np.float32))
    missing = sorted(set(model.state_dict()) - set(state))
    if missing:
        raise _fail(path, f"the file has no weights for {missing[:3]}")
    for i, (block, has_add) in enumerate(zip(model.blocks, matcher.residuals)):
        if block.residual != has_add:
            raise _fail(path, f"blocks.{i}: the file {'has' if has_add else 'lacks'} a residual add, unlike MobileNetV2")
    return state


# --- Public API -----------------------------------------------------------------------------


def import_tflite(
    path: str | os.PathLike, *, label_space: str
) -> tuple[DeepLabMNv2Config, dict[str, torch.Tensor], dict[str, Any]]:
    """Read a DeepLabV3-MobileNetV2 ``.tflite`` file: its config, torch weights and metadata.

    Args:
        path: the TF Lite flatbuffer.
        label_space: ``"voc"`` or ``"ade20k"``; says how output channels map to label ids.

    Returns:
        ``(config, state_dict, meta)``. ``meta`` holds ``label_space``; ``input_size``;
        ``normalization`` (``mean``/``std`` per RGB channel in 0..255 units); ``label_offset``
        and ``channel_ids`` (output channel k is label id ``channel_ids[k]``, which is
        ``(k + label_offset) % num_classes``); ``source`` (file name and sha256); ``graph``
        (unit dilations and feature size read from the file).

    Raises:
        ChainError: the file is missing, not TF Lite, not this network family, or its
            output does not fit the label space.
    """
    path = Path(path)
    if label_space not in LABEL_OFFSETS:
        raise ChainError(f"unknown label space {label_space!r} for a DeepLab import; use one of {sorted(LABEL_OFFSETS)}")
    if not path.is_file():
        raise ChainError(f"{path} does not exist; pass the path of a .tflite file")
    try:
        matcher = _Matcher(path, _Reader(path).read())
        config, facts = matcher.match()
        state_dict = _state_dict(path, config, matcher)
    except struct.error:  # the flatbuffer is read lazily: an offset past the end of a cut file
        raise _fail(path, "the file is truncated or damaged (it points past its own end)") from None
    conform_tensors(state_dict, state_dict, source=path)  # a NaN or inf constant: refused here, not at every run
    if config.num_classes != LABEL_CHANNELS[label_space]:
        raise ChainError(
            f"{path.name} has {config.num_classes} output channels; "
            f"the {label_space} label space needs {LABEL_CHANNELS[label_space]}"
        )
    offset = LABEL_OFFSETS[label_space]
    meta = {
        "label_space": label_space,
        "input_size": config.input_size,
        # Both files take x / 127.5 - 1 on RGB in 0..255, i.e. (x - 127.5) / 127.5.
        "normalization": {"mean": [127.5] * 3, "std": [127.5] * 3},
        "label_offset": offset,
        "channel_ids": [(k + offset) % config.num_classes for k in range(config.num_classes)],
        "source": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        "graph": facts,
    }
    return config, state_dict, meta


def save_imported(path: str | os.PathLike, out_dir: str | os.PathLike, *, label_space: str) -> Path:
    """Import a ``.tflite`` file and write it as a chain checkpoint folder at ``out_dir``."""
    config, state_dict, meta = import_tflite(path, label_space=label_space)
    return save_deeplab_mnv2(out_dir, config=config, state_dict=state_dict, meta=meta)
