"""The variants of the built-in stages: tables that a stage's description (`chain.stages.builtin`)
and its code share, in a module both import (the code must not import the descriptions, which
build it)."""

from __future__ import annotations

from chain.labels import ADE20K, CITYSCAPES, COCO_STUFF, LabelSpace

#: spade's variants and the label space each one paints from.
SPADE_SPACES: dict[str, LabelSpace] = {"coco": COCO_STUFF, "ade20k": ADE20K, "cityscapes": CITYSCAPES}
#: Short names → Hub repositories (Meta's Mask2Former ports, NVIDIA's SegFormers).
MASK2FORMER_REPOS = {
    "coco": "facebook/mask2former-swin-tiny-coco-panoptic",
    "coco-large": "facebook/mask2former-swin-large-coco-panoptic",
    "ade20k": "facebook/mask2former-swin-tiny-ade-semantic",
    "ade20k-large": "facebook/mask2former-swin-large-ade-semantic",
}
SEGFORMER_REPOS = {
    "ade20k": "nvidia/segformer-b2-finetuned-ade-512-512",
    "ade20k-b0": "nvidia/segformer-b0-finetuned-ade-512-512",
    "ade20k-b4": "nvidia/segformer-b4-finetuned-ade-512-512",
}
CONTROLNET_BASE_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CONTROLNET_REPOS = {"v11": "lllyasviel/control_v11p_sd15_seg", "v10": "lllyasviel/sd-controlnet-seg"}
