"""Segmenter ``deeplab-mnv2``: DeepLabV3-MobileNetV2 ported from Google's TF Lite files.

Variants ``voc`` (21 classes, 257x257 input) and ``ade20k`` (150 classes + other, 513x513).
Weights are chain checkpoints made by ``chain import tflite FILE --labels voc|ade20k --out
DIR``: ``--seg-weights DIR``, or ``$CHAIN_WEIGHTS/deeplab-mnv2-{variant}``. The checkpoint's
metadata carries the label space, the input size and normalisation the file expects, and
how output channels map to label ids.

Options: ``fit=square`` (default: frames are resized to the square input the file was made
for, as its TF Lite runtime takes them) or ``fit=aspect`` (short side = input size, aspect
kept; the network is fully convolutional); ``size=N`` overrides the input size;
``quantization=float`` (default) computes in float, ``quantization=tflite`` emulates the stock
TF Lite runtime's int8 arithmetic on the convs a dynamic-range quantized file (the ade20k
one) stores as int8 (XNNPACK: input quantized per pixel, asymmetric), and
``quantization=tflite-builtin`` emulates TF Lite's builtin kernels instead (per image,
symmetric). Files without int8 convs (voc) compute in float in every mode.
``backend=onnx`` (the default on the CPU) runs the float network in ONNX Runtime, exported once
per input size, with the preprocessing of small frames and the labels merged into one graph per
frame size (`chain.stages.onnx_segmenter`); ``backend=torch`` (the default elsewhere, and the
only one for ``quantization=tflite*``) runs it in torch.
"""

from __future__ import annotations

from pathlib import Path

from chain.device import onnx_threads
from chain.errors import ChainError, MissingWeightsError
from chain.labels import get_label_space
from chain.stages.onnx_segmenter import OnnxSegmenter
from chain.stages.spec import StageContext
from chain.stages.torch_segmenter import TorchSegmenter
from chain.stages.variants import DEEPLAB_MNV2
from chain.weights.deeplab_mnv2 import default_checkpoint, load_deeplab_mnv2

FITS = ("square", "aspect")
# --seg-opt quantization=...: the port's activation_quantization for the file's hybrid convs.
BACKENDS = ("torch", "onnx")
QUANTIZATIONS = {"float": "none", "tflite": "dynamic-int8-per-pixel", "tflite-builtin": "dynamic-int8-per-image"}


def build_deeplab_mnv2(variant: str | None, context: StageContext) -> TorchSegmenter:
    path = Path(context.weights) if context.weights else default_checkpoint(variant)
    if not path.exists():
        raise MissingWeightsError(
            f"no DeepLabV3-MobileNetV2 {variant} checkpoint at {path}: make one with "
            f"`{DEEPLAB_MNV2[variant].how_to_get_weights(location=path)}` (or pass --seg-weights DIR)")
    quantization = context.choice_option("quantization", tuple(QUANTIZATIONS))
    backend = _backend(context, quantization)
    network, meta = load_deeplab_mnv2(path, activation_quantization=QUANTIZATIONS[quantization])
    space = get_label_space(meta["label_space"])
    if space.name != get_label_space(variant).name:
        raise ChainError(f"{path} holds a {space.name} network; use --seg deeplab-mnv2:{space.name}")
    fit = context.choice_option("fit", FITS)
    size = context.int_option("size", meta["input_size"], minimum=16)
    normalization = meta["normalization"]
    extra = {"checkpoint": path, "threads": onnx_threads(context.threads)} if backend == "onnx" else {}
    return (OnnxSegmenter if backend == "onnx" else TorchSegmenter)(
        network, **extra, label_space=space, mean=[m / 255 for m in normalization["mean"]],
        std=[s / 255 for s in normalization["std"]], input_size=(size, size) if fit == "square" else size,
        channel_to_label=meta["channel_ids"], device=context.device,
        description=f"DeepLabV3-MobileNetV2 {variant} ({meta.get('source', {}).get('file', path.name)}), {fit} {size}"
        + (f", {quantization} int8 emulation" if quantization != "float" and network.config.hybrid_weight_scales else ""))


def _backend(context: StageContext, quantization: str) -> str:
    """``backend=``: as asked, else ONNX Runtime on the CPU for the float network and torch otherwise."""
    asked = context.options.get("backend")
    if asked is None:
        return "onnx" if context.device.type == "cpu" and quantization == "float" else "torch"
    backend = context.choice_option("backend", BACKENDS)
    if backend == "onnx" and quantization != "float":
        raise ChainError(f"--seg-opt quantization={quantization} emulates TF Lite's int8 arithmetic in torch only; "
                         "drop backend=onnx or use quantization=float")
    return backend
