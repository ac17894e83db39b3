"""Segmenter ``deeplab``: torchvision's DeepLabV3 (ResNet-50, ResNet-101, MobileNetV3-Large).

Weights come through torchvision's own download and cache (``$TORCH_HOME/hub/checkpoints``),
from a local state_dict file (``--seg-weights FILE``), or are random (``--seg-weights
random``: the real architecture, for tests and timing). The label space and the
preprocessing travel with torchvision's weight enums.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models import segmentation
from torchvision.models._api import WeightsEnum

from chain.errors import ChainError, MissingWeightsError
from chain.labels import VOC
from chain.stages.spec import StageContext, StageSpec, WeightsStatus
from chain.stages.torch_segmenter import TorchSegmenter
from chain.weights.fit import build_fitted, read_torch_file
from chain.weights.folder import read_safetensors

_BUILDERS = {
    "resnet50": (segmentation.deeplabv3_resnet50, segmentation.DeepLabV3_ResNet50_Weights.DEFAULT, "ResNet-50"),
    "resnet101": (segmentation.deeplabv3_resnet101, segmentation.DeepLabV3_ResNet101_Weights.DEFAULT, "ResNet-101"),
    "mobilenet_v3_large": (segmentation.deeplabv3_mobilenet_v3_large,
                           segmentation.DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT, "MobileNetV3-Large"),
}
RANDOM = "random"


def weights_cache_path(weights: WeightsEnum) -> Path:
    """Where torchvision keeps (or would keep) a downloaded weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _load_state_dict(variant: str, weights_arg: str | None) -> dict[str, torch.Tensor] | None:
    _, weights, _ = _BUILDERS[variant]
    if weights_arg == RANDOM:
        return None
    if weights_arg is not None:
        return load_state_dict_file(Path(weights_arg))
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as error:  # URLError and friends: no network, no file
        reason = getattr(error, "reason", error)
        raise MissingWeightsError(
            f"DeepLabV3 {variant} weights are not cached and cannot be downloaded ({reason}): fetch {weights.url} "
            f"into {weights_cache_path(weights)}, or pass --seg-weights FILE (or 'random')") from None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.pth``/``.pt`` (tensors only, never arbitrary pickles) or ``.safetensors`` file."""
    if not path.is_file():
        raise ChainError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    state = read_torch_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # torchvision's reference training scripts save {"model": ..., "optimizer": ...}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ChainError(f"{path} does not hold a state_dict of tensors")
    return state


def build_deeplab(variant: str | None, context: StageContext) -> TorchSegmenter:
    """The ``deeplab`` segmenter. Option ``size``: short side frames are resized to (default 520)."""
    variant = variant or "resnet50"
    builder, weights, backbone = _BUILDERS[variant]
    state_dict = _load_state_dict(variant, context.weights)
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


def deeplab_weights_status(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    _, weights, _ = _BUILDERS[variant or "resnet50"]
    if weights_arg == RANDOM:
        return WeightsStatus("random", True)
    if weights_arg is not None:
        return WeightsStatus(weights_arg, Path(weights_arg).is_file())
    cache = weights_cache_path(weights)
    return WeightsStatus(str(cache), cache.is_file(), how_to_get=f"downloaded on first use from {weights.url}")


SPEC = StageSpec(
    name="deeplab",
    kind="segmenter",
    build=build_deeplab,
    summary="torchvision DeepLabV3, PASCAL VOC classes (COCO-VOC weights)",
    variants=tuple(_BUILDERS),
    default_variant="resnet50",
    label_space=lambda variant: VOC.name,
    weights=deeplab_weights_status,
    options=("size",),
)
