"""Label spaces, conversions between them, and user remapping of classes."""

from chain.labels.coco_panoptic import COCO_PANOPTIC, COCO_PANOPTIC_CATEGORY_IDS
from chain.labels.convert import EQUIVALENT, STAND_INS, Conversion, conversion
from chain.labels.remap import describe_remap, parse_remap, remap_notes, remap_table
from chain.labels.space import LabelSpace, normalize_name
from chain.labels.spaces import (
    ADE20K,
    ADE20K_CONTROLNET_PALETTE,
    CAMVID,
    CITYSCAPES,
    CITYSCAPES_TO_TRAIN,
    CITYSCAPES_TRAIN,
    COCO_STUFF,
    COCO_STUFF_UNUSED,
    LABEL_SPACES,
    VOC,
    get_label_space,
    register_label_space,
)

__all__ = [
    "ADE20K",
    "ADE20K_CONTROLNET_PALETTE",
    "CAMVID",
    "CITYSCAPES",
    "CITYSCAPES_TO_TRAIN",
    "CITYSCAPES_TRAIN",
    "COCO_PANOPTIC",
    "COCO_PANOPTIC_CATEGORY_IDS",
    "COCO_STUFF",
    "COCO_STUFF_UNUSED",
    "EQUIVALENT",
    "LABEL_SPACES",
    "STAND_INS",
    "VOC",
    "Conversion",
    "LabelSpace",
    "conversion",
    "describe_remap",
    "get_label_space",
    "normalize_name",
    "parse_remap",
    "register_label_space",
    "remap_notes",
    "remap_table",
]
