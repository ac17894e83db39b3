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
"""

from __future__ import annotations

from dataclasses import dataclass

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
    out = -(-size // stride)
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

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
            top, bottom = same_padding(x.shape[-2], k, s, d)
            left, right = same_padding(x.shape[-1], k, s, d)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


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

    def _resize(self, x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.config.align_corners)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, num_classes, H, W]`` for a normalised image batch ``[B, 3, H, W]``."""
        input_size = x.shape[-2:]
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

        return self._resize(self.classifier(x), input_size)
