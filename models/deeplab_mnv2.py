"""DeepLabV3 / DeepLabV3+ with a MobileNetV2 backbone, as Google's TF Lite exports build it.

Pure torch; this file never imports ``chain``. The graph follows tensorflow/models'
DeepLab (``feature_extractor.py`` + slim's ``mobilenet_v2``) as frozen into the two
TF Lite files the importer reads (``chain.importers.tflite``):

- MobileNetV2 without its final 1x1 (1280) conv. With a width multiplier other than 1
  channel counts are *not* rounded to multiples of 8 (DeepLab passes ``divisible_by=1``).
- ``output_stride`` 8: the stride-2 units after the target stride run at stride 1 and the
  following units' 3x3 depthwise convs are dilated (rates 2 then 4).
- Batch norm is folded into every conv's bias; activations are ReLU6 in the backbone and
  ReLU in the head.
- TensorFlow "SAME" padding. On stride-2 convs it pads ``total // 2`` before and the rest
  after, which is asymmetric for even sizes, so it is computed per input size.
- The MobileNet head: image pooling (global mean, 1x1 conv, broadcast back) and a single
  1x1 ASPP branch (no atrous 3x3 branches), concatenated in that order and projected.
- Optionally the DeepLabV3+ decoder: 48 channels projected from the depthwise output of an
  early unit, concatenated with the upsampled ASPP output, then separable 3x3 convs.
- Every bilinear resize uses ``align_corners=True`` (TF1 ``resize_bilinear``); logits are
  resized straight from feature resolution to the input size.

Dynamic-range ("hybrid") quantized files store some conv kernels as int8 with float
scales; ``DeepLabMNv2Config.hybrid_weight_scales`` names those convs. The TF Lite runtime
then quantizes each such conv's float *input* to int8 on the fly and multiplies integers.
``activation_quantization`` reproduces that arithmetic instead of computing in float:

- ``"dynamic-int8-per-pixel"``: what the stock runtime does (XNNPACK's ``qd8`` path):
  per pixel (the C channels of one position) an asymmetric int8 scale/zero point from
  ``min(0, min x)``/``max(0, max x)`` (``xnn_qd8_asymmetric_quantization_params``: scale
  ``255 / (max - min)``, zero point nudged and rounded half-to-even), ``x * scale`` rounded
  half-to-even plus the zero point, clamped to [-128, 127]; the output is
  ``(float(sum (q - zp) * w_int) / scale) * w_scale + bias``. Only 1x1 convs.
- ``"dynamic-int8-per-image"``: TF Lite's builtin hybrid conv (``EvalHybrid``,
  per-tensor weight scale): one symmetric scale per image, ``max|x| / 127``, values rounded
  half away from zero and clamped to [-127, 127]; output
  ``float(sum q * w_int) * (x_scale * w_scale) + bias``.

Integer products are summed exactly (in float64, far inside its exact-integer range: the
sums can pass float32's 2**24).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# MobileNetV2 inverted-residual settings: (expansion t, channels c, repeats n, stride s).
MOBILENET_V2_UNITS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
# How hybrid convs treat their float input (see the module docstring).
ACTIVATION_QUANTIZATIONS = ("none", "dynamic-int8-per-pixel", "dynamic-int8-per-image")


@dataclass
class DeepLabMNv2Config:
    """Everything that shapes the network; the importer reads each field from the graph.

    The defaults are the PASCAL VOC file (``deeplabv3_mnv2_voc_257.tflite``); the ADE20K
    file differs in ``num_classes=151``, ``width_multiplier=1.0``, ``decoder=True`` and
    ``input_size=513``.
    """

    num_classes: int = 21
    width_multiplier: float = 0.5
    output_stride: int = 8  # input size / feature size; later units are dilated instead
    aspp_channels: int = 256
    image_pooling: bool = True  # the global-mean branch beside the 1x1 ASPP conv
    decoder: bool = False  # DeepLabV3+ decoder on a stride-4 low-level feature
    decoder_tap: int = 2  # unit whose depthwise output feeds it (DeepLab's layer_4)
    decoder_low_level_channels: int = 48
    decoder_channels: int = 256
    decoder_convs: int = 2  # separable 3x3 convs after the decoder concat
    align_corners: bool = True  # of every bilinear resize in the graph
    input_size: int = 257  # the square size the graph was frozen at; other sizes work
    # Convs whose kernels the source file stores as int8 (module name -> weight scale: one
    # per tensor, or one per output channel). The dequantized kernels are int8 x scale.
    hybrid_weight_scales: dict[str, list[float]] = field(default_factory=dict)
    # How those convs run: "none" computes them in float; the other modes emulate the
    # TF Lite runtime's int8 arithmetic (ACTIVATION_QUANTIZATIONS, module docstring).
    activation_quantization: str = "none"


def scaled_channels(channels: int, width_multiplier: float) -> int:
    """Channel count after the width multiplier, rounded as DeepLab's MobileNetV2 does.

    slim rounds to a multiple of 8 only at multiplier 1.0; otherwise to an integer, and
    never below 8.
    """
    divisor = 8 if width_multiplier == 1.0 else 1
    value = channels * width_multiplier
    rounded = max(8, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis of length ``size``."""
    span = (kernel - 1) * dilation + 1
    # Ceil division without negative operands: traced to ONNX, // becomes Div, which truncates toward zero.
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding.

    At stride 1 an odd kernel pads symmetrically, so the padding is static. At stride 2 it
    depends on the input size (one extra row/column after when the size is even), so it is
    applied with ``F.pad`` per call.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        static = dilation * (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(
            in_channels, out_channels, kernel_size, stride, static, dilation, groups, bias=True
        )
        # Hybrid emulation (off unless `set_hybrid` turns it on): the kernel's int8 scale(s).
        self.input_quantization = "none"
        self.register_buffer("weight_scale", None, persistent=False)

    def set_hybrid(self, weight_scale: list[float] | None, input_quantization: str) -> None:
        """Compute as a hybrid conv (int8 kernel = weight / weight_scale) or, with
        ``weight_scale=None`` or ``input_quantization="none"``, in float."""
        if input_quantization not in ACTIVATION_QUANTIZATIONS:
            raise ValueError(f"unknown activation quantization {input_quantization!r}; use one of {ACTIVATION_QUANTIZATIONS}")
        if weight_scale is None or input_quantization == "none":
            self.input_quantization, self.weight_scale = "none", None
            return
        if len(weight_scale) not in (1, self.out_channels):
            raise ValueError(f"{len(weight_scale)} weight scales for a conv with {self.out_channels} output channels")
        if input_quantization == "dynamic-int8-per-pixel" and (self.kernel_size[0] != 1 or self.stride[0] != 1):
            raise ValueError("per-pixel input quantization is only emulated for 1x1 stride-1 convs")
        if input_quantization == "dynamic-int8-per-image" and len(weight_scale) != 1:
            # TF Lite's builtin per-channel hybrid conv quantizes asymmetrically instead.
            raise ValueError("per-image input quantization is only emulated for per-tensor weight scales")
        self.input_quantization = input_quantization
        self.weight_scale = torch.tensor(weight_scale, dtype=torch.float32, device=self.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
            if torch.onnx.is_in_onnx_export() and self.input_quantization == "none":
                # An export is made per input size: constant padding, and a symmetric one becomes the
                # conv's own, which ONNX Runtime fuses (4% faster than Pad then Conv on the CPU).
                top, bottom = same_padding(int(x.shape[-2]), k, s, d)
                left, right = same_padding(int(x.shape[-1]), k, s, d)
                if (top, left) == (bottom, right):
                    return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
            top, bottom = same_padding(x.shape[-2], k, s, d)
            left, right = same_padding(x.shape[-1], k, s, d)
            x = F.pad(x, (left, right, top, bottom))
        if self.input_quantization != "none":
            return self._hybrid_forward(x)
        return super().forward(x)

    def _hybrid_forward(self, x: Tensor) -> Tensor:
        """The runtime's hybrid conv: int8 input x int8 kernel summed exactly, then rescaled."""
        x = x.float()
        w_scale = self.weight_scale.view(-1, 1, 1, 1)
        w_int = torch.round(self.weight.float() / w_scale)  # exact: the weights are int8 x scale
        if self.input_quantization == "dynamic-int8-per-pixel":
            low = x.amin(dim=1, keepdim=True).clamp(max=0.0)
            high = x.amax(dim=1, keepdim=True).clamp(min=0.0)
            flat = low == high
            inv_scale = torch.where(flat, 1.0, 255.0 / torch.where(flat, 1.0, high - low))
            low_q, high_q = low * inv_scale, high * inv_scale
            zero = torch.where((low_q - 128.0) + (high_q + 127.0) > 0, -128.0 - low_q, 127.0 - high_q)
            zero = torch.round(zero.clamp(-128.0, 127.0))
            q = (torch.round(x * inv_scale) + zero).clamp(-128.0, 127.0) - zero
            x_scale = 1.0 / inv_scale  # [B, 1, H, W]: the output pixel's own input scale
        else:
            bound = x.abs().amax(dim=(1, 2, 3), keepdim=True)
            empty = bound == 0
            inv_scale = torch.where(empty, 0.0, 127.0 / torch.where(empty, 1.0, bound))
            scaled = x * inv_scale
            q = (torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)).clamp(-127.0, 127.0)
            x_scale = torch.where(empty, 1.0, bound / 127.0)
        acc = F.conv2d(
            q.double(), w_int.double(), None, self.stride, self.padding, self.dilation, self.groups
        ).float()
        w_scale = self.weight_scale.view(1, -1, 1, 1)
        if self.input_quantization == "dynamic-int8-per-pixel":
            out = acc * x_scale * w_scale
        else:
            out = acc * (x_scale * w_scale)
        return out + self.bias.view(1, -1, 1, 1)


class InvertedResidual(nn.Module):
    """MobileNetV2 unit: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear project."""

    def __init__(
        self, in_channels: int, out_channels: int, expansion: int, stride: int, dilation: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = Conv2dSame(in_channels, hidden) if expansion != 1 else None
        self.depthwise = Conv2dSame(hidden, hidden, 3, stride, dilation, groups=hidden)
        self.project = Conv2dSame(hidden, out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the unit's output and its depthwise output (the decoder taps the latter)."""
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        tap = F.relu6(self.depthwise(h))
        out = self.project(tap)
        return (out + x if self.residual else out), tap


class SeparableConv(nn.Module):
    """3x3 depthwise then 1x1 pointwise conv, each followed by ReLU (the decoder's convs)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = Conv2dSame(in_channels, in_channels, 3, groups=in_channels)
        self.pointwise = Conv2dSame(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.pointwise(F.relu(self.depthwise(x))))


class DeepLabMNv2(nn.Module):
    """DeepLabV3(+) MobileNetV2 segmenter: normalised ``[B,3,H,W]`` in, ``[B,C,H,W]`` logits out.

    The input is RGB already scaled to ``[-1, 1]`` (``(x - 127.5) / 127.5``); the logits
    come back at the input resolution.
    """

    def __init__(self, config: DeepLabMNv2Config) -> None:
        super().__init__()
        self.config = config
        width = config.width_multiplier

        self.stem = Conv2dSame(3, scaled_channels(STEM_CHANNELS, width), 3, stride=2)
        blocks: list[InvertedResidual] = []
        in_channels = self.stem.out_channels
        current_stride, rate = 2, 1
        for expansion, channels, repeats, first_stride in MOBILENET_V2_UNITS:
            out_channels = scaled_channels(channels, width)
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                # Past the output stride, slim keeps stride 1 and dilates later units instead.
                if current_stride == config.output_stride:
                    block_stride, block_rate, rate = 1, rate, rate * stride
                else:
                    block_stride, block_rate, current_stride = stride, 1, current_stride * stride
                blocks.append(
                    InvertedResidual(in_channels, out_channels, expansion, block_stride, block_rate)
                )
                in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)

        aspp = config.aspp_channels
        self.pool_conv = Conv2dSame(in_channels, aspp) if config.image_pooling else None
        self.aspp_conv = Conv2dSame(in_channels, aspp)
        self.aspp_project = Conv2dSame(aspp * (2 if config.image_pooling else 1), aspp)

        head_channels = aspp
        if config.decoder:
            tap_channels = self.blocks[config.decoder_tap].depthwise.out_channels
            low = config.decoder_low_level_channels
            self.low_level = Conv2dSame(tap_channels, low)
            convs = [SeparableConv(aspp + low, config.decoder_channels)]
            convs += [
                SeparableConv(config.decoder_channels, config.decoder_channels)
                for _ in range(config.decoder_convs - 1)
            ]
            self.decoder_convs = nn.ModuleList(convs)
            head_channels = config.decoder_channels
        else:
            self.low_level = None
            self.decoder_convs = None
        self.classifier = Conv2dSame(head_channels, config.num_classes)
        self.set_activation_quantization(config.activation_quantization)

    def set_activation_quantization(self, mode: str) -> None:
        """Switch the hybrid convs (``config.hybrid_weight_scales``) between float and an
        emulation of the TF Lite runtime's int8 arithmetic (``ACTIVATION_QUANTIZATIONS``)."""
        if mode not in ACTIVATION_QUANTIZATIONS:
            raise ValueError(f"unknown activation quantization {mode!r}; use one of {ACTIVATION_QUANTIZATIONS}")
        modules = dict(self.named_modules())
        unknown = sorted(set(self.config.hybrid_weight_scales) - set(modules))
        if unknown:
            raise ValueError(f"hybrid_weight_scales names modules this network lacks: {unknown[:3]}")
        for name, scales in self.config.hybrid_weight_scales.items():
            modules[name].set_hybrid(list(scales), mode)
        self.config.activation_quantization = mode

    def _resize(self, x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.config.align_corners)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, num_classes, H, W]`` for a normalised image batch ``[B, 3, H, W]``."""
        return self._resize(self.feature_logits(x), x.shape[-2:])

    def feature_logits(self, x: Tensor) -> Tensor:
        """The logits before their final resize: ``[B, num_classes, h, w]`` at feature resolution
        (``forward`` resizes them bilinearly to the input size; a caller after labels only can
        resize less, see ``chain.stages.resized_argmax``)."""
        x = F.relu6(self.stem(x))
        tap = None
        for i, block in enumerate(self.blocks):
            x, depthwise_out = block(x)
            if i == self.config.decoder_tap:
                tap = depthwise_out

        branches = []
        if self.pool_conv is not None:
            # The graph average-pools over the whole frozen feature map; a global mean
            # is the same thing at any size. Resizing a 1x1 map is a broadcast.
            pooled = F.relu(self.pool_conv(x.mean(dim=(2, 3), keepdim=True)))
            branches.append(pooled.expand(-1, -1, *x.shape[-2:]))
        branches.append(F.relu(self.aspp_conv(x)))
        x = F.relu(self.aspp_project(torch.cat(branches, dim=1)))

        if self.decoder_convs is not None:
            low = F.relu(self.low_level(tap))
            x = torch.cat([self._resize(x, low.shape[-2:]), low], dim=1)
            for conv in self.decoder_convs:
                x = conv(x)

        return self.classifier(x)
