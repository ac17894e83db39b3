"""Segmenter ``deeplab``: torchvision's DeepLabV3 (ResNet-50, ResNet-101, MobileNetV3-Large).

Weights (`chain.weights.deeplab`) come through torchvision's own download and cache
(``$TORCH_HOME/hub/checkpoints``), from a local state_dict file (``--seg-weights FILE``), or are
random (``--seg-weights random``: the real architecture, for tests and timing). The label space
and the preprocessing travel with torchvision's weight enums.
"""

from __future__ import annotations

from torchvision.models import segmentation

from chain.labels import VOC
from chain.stages.spec import StageContext
from chain.stages.torch_segmenter import TorchSegmenter
from chain.weights.deeplab import load_deeplab_state_dict
from chain.weights.fit import build_fitted

_BUILDERS = {
    "resnet50": (segmentation.deeplabv3_resnet50, segmentation.DeepLabV3_ResNet50_Weights.DEFAULT, "ResNet-50"),
    "resnet101": (segmentation.deeplabv3_resnet101, segmentation.DeepLabV3_ResNet101_Weights.DEFAULT, "ResNet-101"),
    "mobilenet_v3_large": (segmentation.deeplabv3_mobilenet_v3_large,
                           segmentation.DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT, "MobileNetV3-Large"),
}
def build_deeplab(variant: str | None, context: StageContext) -> TorchSegmenter:
    """The ``deeplab`` segmenter. Option ``size``: short side frames are resized to (default 520)."""
    builder, weights, backbone = _BUILDERS[variant]
    state_dict = load_deeplab_state_dict(weights, f"DeepLabV3 {variant}", context.weights)
    aux_loss = state_dict is not None and any(k.startswith("aux_classifier") for k in state_dict)
    make = lambda: builder(weights=None, weights_backbone=None,  # noqa: E731
                           num_classes=len(weights.meta["categories"]), aux_loss=aux_loss)
    network = (make() if state_dict is None else
               build_fitted(make, state_dict, source=context.weights or weights.url, what=f"DeepLabV3 {variant}"))
    preprocessing = weights.transforms()
    size = context.int_option("size", preprocessing.resize_size[0], minimum=16)
    source = "random weights" if state_dict is None else (context.weights or "torchvision COCO-VOC weights")
    return TorchSegmenter(network, label_space=VOC, mean=preprocessing.mean, std=preprocessing.std,
                          input_size=size, device=context.device,
                          description=f"torchvision DeepLabV3 {backbone} ({source}), short side {size}")
