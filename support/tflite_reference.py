"""The TF Lite runtime (ai-edge-litert) as a reference for the DeepLabV3-MobileNetV2 port.

Only the parity tests (tests/test_deeplab_mnv2.py) and benchmarks (benchmarks/deeplab_mnv2_*.py,
which put the repository root on ``sys.path``) use it; chain itself never runs TF Lite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from chain.errors import ChainError
from chain.importers.tflite import dequantize_constant


def reference_input(image: Any, size: int) -> np.ndarray:
    """A PIL image as parity checks feed both runtimes: RGB, PIL-bilinear to size x size,
    scaled to [-1, 1]; ``[size, size, 3]`` float32 (channels last, as TF Lite takes it)."""
    from PIL import Image

    square = image.convert("RGB").resize((size, size), Image.BILINEAR)
    return (np.asarray(square, np.float32) - 127.5) / 127.5


def _litert_schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as error:
        raise ChainError("TF Lite references need the 'ai-edge-litert' package: pip install ai-edge-litert") from error
    return schema_py_generated


def float_weights_flatbuffer(path: str | os.PathLike) -> bytes:
    """The same TF Lite graph with its int8 conv kernels stored as float32.

    The ADE20K file is dynamic-range quantized: most 1x1 conv kernels are int8, and for such
    "hybrid" convs the runtime also quantizes the conv's *input* to int8 on the fly (per pixel
    in XNNPACK, per tensor in the builtin kernels), a noise the float network does not have.
    With the kernels dequantized in the file the runtime computes the network in float, as
    the torch port does, which separates the port's correctness from that runtime noise.
    """
    import flatbuffers

    schema = _litert_schema()
    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    convs = (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D)
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) not in convs:
                continue
            kernel = subgraph.tensors[op.inputs[1]]
            if kernel.type != schema.TensorType.INT8 or kernel.quantization is None:
                continue
            quant = kernel.quantization
            values = np.frombuffer(bytes(model.buffers[kernel.buffer].data), np.int8).reshape(kernel.shape)
            zero = None if quant.zeroPoint is None else np.asarray(quant.zeroPoint)
            values = dequantize_constant(values, np.asarray(quant.scale), zero, quant.quantizedDimension)
            model.buffers[kernel.buffer].data = np.frombuffer(values.tobytes(), np.uint8)
            kernel.type, kernel.quantization = schema.TensorType.FLOAT32, None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class TFLiteReference:
    """The TF Lite runtime (ai-edge-litert) on one network file.

    Call it with one ``[S, S, 3]`` normalised image (see `reference_input`); it returns the
    ``[S, S, C]`` logits. Batch 1 only, as the files are frozen. The runtime's default
    kernels (XNNPACK) run it unless ``builtin_kernels``, which picks TF Lite's own kernels;
    those quantize a hybrid conv's input differently (per tensor, not per pixel).
    """

    def __init__(
        self, model: str | os.PathLike | bytes, *, num_threads: int = 2, builtin_kernels: bool = False
    ) -> None:
        _litert_schema()
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_kernels else OpResolverType.AUTO
        self._interpreter = Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.size = int(self._input["shape"][1])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(image[None], np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0].copy()

    def invoke_in_place(self, image: np.ndarray) -> np.ndarray:
        """As calling it, without copies: ``image`` is written into the runtime's input tensor and the
        logits returned are a view of its output, valid until the next call (drop it before then).

        For speed comparisons: the call's two copies of 21x257x257 floats cost 0.5-4 ms a frame
        depending on the allocator's state, as much as the network's 4 ms on 2 cores."""
        self._interpreter.tensor(self._input["index"])()[0] = image
        self._interpreter.invoke()
        return self._interpreter.tensor(self._output["index"])()[0]
