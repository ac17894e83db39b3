"""The COCO panoptic label space: 80 things + 53 stuff classes, as COCO-panoptic models output them.

Names, colours and order come from ``chain/labels/data/coco_panoptic_categories.json``, a
compact copy of cocodataset/panopticapi's ``panoptic_coco_categories.json`` (id, name,
isthing, colour of each category). Our id k is the k-th category of that file, which is the
contiguous id detectron2, Mask2Former, OneFormer and the Hugging Face checkpoints use
(``id2label`` 0 = person … 132 = rug-merged). Id 133, "unlabeled" (black), is the fallback
that classes of other spaces with no counterpart become; COCO-panoptic models never output it.

COCO panoptic merged some COCO-Stuff classes into one ("grass-merged" = moss + grass + straw).
`MERGED` lists each merged class's COCO-Stuff members, the one it converts to first: the
largest or most general member, the class SPADE-COCO draws for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chain.labels.space import LabelSpace

DATA_FILE = Path(__file__).with_name("data") / "coco_panoptic_categories.json"

#: Merged class → the COCO-Stuff classes it merged, its conversion destination first. The
#: members are the COCO 2018 panoptic task's merge table (cocodataset.org, panoptic
#: categories; in COCO-Stuff's spelling).
MERGED: dict[str, tuple[str, ...]] = {
    "tree-merged": ("tree", "branch", "bush", "leaves"),
    "fence-merged": ("fence", "cage", "railing"),
    "ceiling-merged": ("ceiling-other", "ceiling-tile"),
    "sky-other-merged": ("sky-other", "clouds", "fog"),
    "cabinet-merged": ("cabinet", "cupboard"),
    "table-merged": ("table", "desk-stuff"),
    "floor-other-merged": ("floor-other", "floor-marble", "floor-tile"),
    "pavement-merged": ("pavement", "floor-stone"),
    "mountain-merged": ("mountain", "hill"),
    "grass-merged": ("grass", "moss", "straw"),
    "dirt-merged": ("dirt", "mud"),
    "paper-merged": ("paper", "napkin"),
    "food-other-merged": ("food-other", "salad", "vegetable"),
    "building-other-merged": ("building-other", "skyscraper"),
    "rock-merged": ("rock", "stone"),
    "wall-other-merged": ("wall-other", "wall-concrete", "wall-panel"),
    "rug-merged": ("rug", "mat", "carpet"),
}


def _space(categories: list[dict]) -> LabelSpace:
    names = (*(c["name"] for c in categories), "unlabeled")
    palette = np.array([*(c["color"] for c in categories), (0, 0, 0)], dtype=np.uint8)
    # Bare words for the merged and "-other"/"-stuff" classes, so `--remap grass=snow` works here too.
    aliases: dict[str, str] = {}
    for merged in MERGED:
        bare = merged.removesuffix("-merged")
        aliases[bare] = merged
        if bare.endswith("-other"):
            aliases[bare.removesuffix("-other")] = merged
    aliases.update({"water": "water-other", "window": "window-other", "door": "door-stuff", "mirror": "mirror-stuff",
                    "aeroplane": "airplane", "motorbike": "motorcycle", "sofa": "couch", "television": "tv"})
    return LabelSpace(
        name="coco-panoptic",
        names=names,
        palette=palette,
        fallback="unlabeled",
        description="COCO panoptic: 80 thing + 53 stuff classes (Mask2Former/OneFormer COCO models), + unlabeled",
        aliases=aliases,
    )


_CATEGORIES = json.loads(DATA_FILE.read_text())["categories"]
COCO_PANOPTIC = _space(_CATEGORIES)
#: The COCO category id of each of our ids (unlabeled: 0); unmerged classes keep COCO-Stuff's
#: ids (snow: 159), merged ones have new ids from 184 on.
COCO_PANOPTIC_CATEGORY_IDS: tuple[int, ...] = (*(c["id"] for c in _CATEGORIES), 0)

#: COCO panoptic classes that ADE20K-150 has no class for, not even a broader one: converted
#: to ADE20K they become its "other" on purpose (the run summary lists them when they occur).
#: Street furniture, hand-held sports gear, cutlery and small gadgets are not among ADE's 150.
UNMAPPED_IN_ADE20K = frozenset({
    "fire hydrant", "parking meter", "umbrella", "skis", "snowboard", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "fork", "knife", "spoon", "remote", "cell phone", "scissors",
    "hair drier", "toothbrush", "paper-merged",
})
