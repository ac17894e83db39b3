"""Converting label maps between label spaces by class name.

A source class finds its target class in rings, nearest first:

1. its own name, then the other names of its `EQUIVALENT` group (same concept, other
   spelling or dataset): ``aeroplane`` → ``airplane``, ``sidewalk`` → ``pavement``;
2. the names listed for it in `STAND_INS` (directional: usually a broader class, otherwise
   the closest thing the target can draw), with their equivalents; then *their* stand-ins,
   up to `MAX_HOPS` steps: CamVid ``bicyclist`` → Cityscapes ``rider`` → COCO ``person``.

The first name the target space knows (its class names and aliases) wins, skipping the target's
`LabelSpace.unused` classes, so ADE ``door`` lands on COCO-Stuff ``door-stuff`` rather than
the never-annotated thing ``door``. A class found nowhere becomes the target's fallback and is
listed in `Conversion.unmapped`. Where a dataset publishes its own table (Cityscapes label
id → train id), that table is used instead.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from chain.labels.coco_panoptic import MERGED
from chain.labels.space import LabelSpace, normalize_name
from chain.labels.spaces import CITYSCAPES, CITYSCAPES_TO_TRAIN, CITYSCAPES_TRAIN

#: Groups of names for one concept; the first member that a target knows is used, after the
#: source's own name. A name belongs to at most one group.
EQUIVALENT: tuple[tuple[str, ...], ...] = (
    # VOC's spellings and the COCO / ADE / CamVid names for the same things.
    ("airplane", "aeroplane", "plane"),
    ("motorcycle", "motorbike", "minibike"),
    ("bicycle", "bike"),
    ("dining table", "diningtable"),
    ("potted plant", "pottedplant", "houseplant"),
    ("couch", "sofa"),
    ("tv", "tvmonitor", "tv monitor", "television receiver", "television"),
    ("person", "pedestrian", "people"),
    ("traffic sign", "sign symbol", "signsymbol", "street sign"),
    # COCO-Stuff's "-other" stuff classes are the generic class of other datasets.
    ("sky", "sky other"),
    ("building", "building other"),
    ("wall", "wall other"),
    ("floor", "floor other"),
    ("ceiling", "ceiling other"),
    ("water", "water other"),
    ("plant", "plant other"),
    ("food", "food other"),
    ("earth", "ground other"),
    # COCO-Stuff's thing twins (window, door, mirror, desk) are unused; the stuff ones are not.
    ("windowpane", "window", "window other"),
    ("door", "door stuff"),
    ("mirror", "mirror stuff"),
    ("desk", "desk stuff"),
    ("blind", "window blind"),
    ("tree", "vegetation"),
    ("sidewalk", "pavement"),
    ("rail track", "railroad", "railway"),
    ("apparel", "clothes"),
    ("unlabeled", "void", "ignore", "other"),
)

def _to(stand_in: str | tuple[str, ...], *names: str) -> dict[str, tuple[str, ...]]:
    """``{name: stand-ins}`` for several classes that share their stand-ins."""
    stand_ins = (stand_in,) if isinstance(stand_in, str) else stand_in
    return dict.fromkeys(names, stand_ins)


#: Directional fallbacks: where a class goes when no equivalent exists in the target, in order
#: of preference. Mostly a broader class; sometimes only the nearest drawable thing.
STAND_INS: dict[str, tuple[str, ...]] = {
    # people and vehicles. CamVid's "car" also holds trucks, buses and trains, and its
    # "bicyclist" motorcyclists: the nearest stand-ins for spaces that lack those classes.
    "bicyclist": ("rider",),
    "rider": ("person",),
    "van": ("car", "truck"),
    "caravan": ("trailer", "truck", "car"),
    "trailer": ("truck", "car"),
    **_to("car", "ego vehicle", "license plate", "truck", "bus", "train"),
    **_to("bicyclist", "bicycle", "motorcycle"),
    "ship": ("boat",),
    # animals: ADE20K and Cityscapes have one catch-all class; into spaces with species, a dog
    # (COCO's most common animal) is a better picture than a hole.
    **_to("animal", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
          "giraffe"),
    "animal": ("dog", "dynamic"),
    # Cityscapes' catch-all for fixed street furniture
    **_to("static", "fire hydrant", "parking meter", "bench", "ashcan", "sculpture"),
    # street structure
    **_to("road", "parking", "runway"),
    "dirt track": ("dirt", "road"),
    **_to("sidewalk", "path", "platform"),
    "rail track": ("ground",),
    "guard rail": ("railing", "fence"),
    "railing": ("fence",),
    "bannister": ("railing",),
    "polegroup": ("pole",),
    "pole": ("structural other",),
    "streetlight": ("light", "pole"),
    "traffic light": ("traffic sign",),
    "traffic sign": ("stop sign", "signboard"),
    "stop sign": ("traffic sign",),
    "signboard": ("traffic sign", "banner"),
    **_to("signboard", "trade name", "bulletin board"),
    **_to("unlabeled", "rectification border", "out of roi"),
    # buildings and their parts (CamVid and Cityscapes draw walls, windows, doors, bridges
    # and awnings as building)
    **_to("building", "house", "skyscraper", "tower", "roof", "booth", "tunnel", "wall",
          "bridge", "windowpane", "door"),
    "hovel": ("house",),
    "awning": ("canopy", "building"),
    "canopy": ("tent",),
    "column": ("structural other", "building"),
    "screen door": ("door",),
    **_to("wall", *(f"wall {kind}" for kind in ("brick", "concrete", "panel", "stone", "tile", "wood"))),
    **_to("floor", *(f"floor {kind}" for kind in ("marble", "stone", "tile", "wood"))),
    "ceiling tile": ("ceiling",),
    "floor": ("ground",),
    **_to("stairs", "stairway", "step", "escalator"),
    # ground and terrain (Cityscapes "terrain" is grass, soil and sand; "ground" is the rest)
    "grass": ("terrain", "vegetation"),
    "terrain": ("grass", "earth"),
    "earth": ("terrain", "ground"),
    **_to("earth", "ground", "land"),
    **_to(("terrain", "earth"), "dirt", "gravel", "sand", "snow"),
    "mud": ("dirt",),
    "rock": ("terrain",),
    "hill": ("mountain", "terrain"),
    "mountain": ("hill", "terrain"),
    "field": ("grass", "playingfield"),
    "playingfield": ("field", "grass"),
    "moss": ("grass", "plant"),
    # plants
    **_to("tree", "palm", "branch", "leaves"),
    "bush": ("plant", "tree"),
    "flower": ("plant",),
    "plant": ("potted plant", "vegetation"),
    "potted plant": ("plant",),
    # sky and water
    **_to("sky", "clouds", "fog"),
    **_to("water", "sea", "river", "lake", "waterfall", "fountain", "swimming pool", "waterdrops"),
    "pier": ("bridge", "platform"),
    # furniture
    "table": ("dining table",),
    **_to("table", "dining table", "desk", "coffee table", "pool table"),
    **_to("counter", "kitchen island", "countertop", "bar"),
    **_to("chair", "armchair", "swivel chair", "seat", "stool", "ottoman"),
    "cupboard": ("cabinet",),
    "wardrobe": ("cupboard", "cabinet"),
    **_to("cabinet", "chest of drawers", "buffet", "case"),
    "bookcase": ("shelf",),
    "cradle": ("bed",),
    "cushion": ("pillow",),
    **_to("rug", "carpet", "mat"),
    "stove": ("oven",),
    # screens and lights
    **_to("tv", "monitor", "crt screen", "screen"),
    "computer": ("laptop", "monitor"),
    "laptop": ("computer",),
    "lamp": ("light",),
    **_to("lamp", "chandelier", "sconce"),
    # small things
    "painting": ("poster",),
    "poster": ("paper", "banner"),
    "flag": ("banner",),
    "banner": ("flag",),
    "box": ("cardboard",),
    "cardboard": ("box",),
    "pot": ("vase",),
    "plate": ("bowl",),
    "bowl": ("plate",),
    # COCO things into ADE20K: a computer's peripherals are the computer; a toaster is the
    # nearest small kitchen appliance; a sports net is drawn like a fence.
    **_to("computer", "mouse", "keyboard"),
    "toaster": ("microwave", "oven"),
    "net": ("fence",),
    **_to("glass", "wine glass", "cup"),
    "glass": ("cup", "wine glass"),
    "sports ball": ("ball",),
    "ball": ("sports ball",),
    **_to("plaything", "teddy bear", "kite", "frisbee"),
    **_to("bag", "handbag", "backpack", "suitcase"),
    "bag": ("handbag",),
    **_to("apparel", "hat", "shoe", "tie"),
    **_to("food", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
          "pizza", "donut", "cake", "fruit", "vegetable", "salad"),
}

#: How many stand-in steps a class may take. Two reach bicyclist → rider → person and
#: cat → animal → dynamic; longer chains drift (rail track → ground → earth → terrain ...).
MAX_HOPS = 2

# Tables a dataset defines itself win over names (Cityscapes' parking, guard rail, caravan...
# are not evaluated, so trainId says "ignore", not road / fence / truck).
_OFFICIAL_TABLES: dict[tuple[str, str], np.ndarray] = {
    (CITYSCAPES.name, CITYSCAPES_TRAIN.name): CITYSCAPES_TO_TRAIN,
}


def _build_groups() -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for group in EQUIVALENT:
        members = tuple(normalize_name(n) for n in group)
        for member in members:
            if member in groups:
                raise ValueError(f"{member!r} is in two EQUIVALENT groups")
            groups[member] = members
    return groups


_GROUPS = _build_groups()


def _build_stand_ins() -> dict[str, tuple[str, ...]]:
    stand_ins = {normalize_name(k): tuple(map(normalize_name, v)) for k, v in STAND_INS.items()}
    # COCO panoptic's merged classes: a merged class goes to its members, the destination first
    # (grass-merged → grass, then moss, straw); a member goes to its merged class before its
    # other stand-ins (floor-stone → pavement-merged, as the panoptic annotations merged it).
    for merged, members in MERGED.items():
        merged_name = normalize_name(merged)
        stand_ins[merged_name] = tuple(map(normalize_name, members))
        for member in map(normalize_name, members):
            stand_ins[member] = (merged_name, *stand_ins.get(member, ()))
    return stand_ins


_STAND_INS = _build_stand_ins()


def _resolve(class_name: str, target: LabelSpace) -> int | None:
    """The target id for ``class_name``, searching equivalents then stand-ins, or None."""
    avoid = target.unused_ids
    seen: set[str] = set()
    frontier = [normalize_name(class_name)]
    for _ in range(MAX_HOPS + 1):
        ring: list[str] = []
        for name in frontier:
            for member in (name, *_GROUPS.get(name, ())):
                if member not in seen:
                    seen.add(member)
                    ring.append(member)
        for name in ring:
            label_id = target.find(name)
            if label_id is not None and label_id not in avoid:
                return label_id
        frontier = [s for name in ring for s in _STAND_INS.get(name, ()) if s not in seen]
    return None


@dataclass(frozen=True, eq=False)
class Conversion:
    """A look-up table from the ids of ``source`` to the ids of ``target``.

    Attributes:
        source: the space label maps come in.
        target: the space they go out in.
        lut: ``(len(source),)`` target id of each source id, in ``target.dtype``.
        unmapped: source classes with no counterpart, which became the target's fallback
            (never the source's own fallback class, which always does).
    """

    source: LabelSpace
    target: LabelSpace
    lut: np.ndarray
    unmapped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lut = np.asarray(self.lut, dtype=self.target.dtype)
        if lut.shape != (len(self.source),):
            raise ValueError(f"lut shape {lut.shape} != ({len(self.source)},)")
        lut.setflags(write=False)
        object.__setattr__(self, "lut", lut)
        # Ids outside the source space (a stray 255 in a dataset PNG) become the fallback.
        padded = np.full(max(len(lut) + 1, 256), self.target.fallback_id, dtype=lut.dtype)
        padded[: len(lut)] = lut
        object.__setattr__(self, "_padded", padded)

    @property
    def is_identity(self) -> bool:
        """True when applying the table changes nothing."""
        return self.source is self.target and bool(np.all(self.lut == np.arange(len(self.lut))))

    def apply(self, labels: Any) -> Any:
        """Convert a label map of source ids (numpy array or torch tensor, any shape).

        A numpy array comes back in ``target.dtype``; a torch tensor comes back on its device,
        in its own integer dtype (int64 if it was not an integer tensor or is too narrow).
        Ids outside the source space become the target's fallback.
        """
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(labels, torch.Tensor):
            return self._apply_torch(labels, torch)
        labels = np.asarray(labels)
        if labels.dtype == np.uint8:
            return self._padded[labels]  # type: ignore[attr-defined]
        n = len(self.lut)
        idx = labels.astype(np.intp, copy=False)
        outside = (idx < 0) | (idx >= n)
        if outside.any():
            idx = np.where(outside, n, idx)
        return self._padded[idx]  # type: ignore[attr-defined]

    def _apply_torch(self, labels: Any, torch: Any) -> Any:
        n = len(self.lut)
        padded = self._padded[: n + 1].astype(np.int64)  # type: ignore[attr-defined]
        table = torch.as_tensor(padded, device=labels.device)
        idx = labels.long()
        idx = torch.where((idx >= 0) & (idx < n), idx, torch.full_like(idx, n))
        out = table[idx]
        narrow = labels.dtype == torch.uint8 and len(self.target) > 256
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or narrow:
            return out
        return out.to(labels.dtype)


def conversion(
    source: LabelSpace, target: LabelSpace, *, overrides: Mapping[str, str] | None = None
) -> Conversion:
    """The `Conversion` from ``source`` to ``target`` (identity when they are the same space).

    Args:
        overrides: source class name → target class name, winning over the synonym table,
            e.g. ``{"background": "grass"}``. Unknown names raise `ChainError` with suggestions.
    """
    base = _cached_conversion(source, target)
    if not overrides:
        return base
    lut = base.lut.copy()
    overridden: set[int] = set()
    for source_name, target_name in overrides.items():
        source_id = source.id_of(source_name)
        lut[source_id] = target.id_of(target_name)
        overridden.add(source_id)
    unmapped = tuple(n for n in base.unmapped if source.id_of(n) not in overridden)
    return Conversion(source, target, lut, unmapped)


@functools.cache
def _cached_conversion(source: LabelSpace, target: LabelSpace) -> Conversion:
    if source is target:
        return Conversion(source, target, np.arange(len(source)))
    official = _OFFICIAL_TABLES.get((source.name, target.name))
    if official is not None:
        return Conversion(source, target, official)
    lut = np.full(len(source), target.fallback_id, dtype=target.dtype)
    unmapped: list[str] = []
    for source_id, class_name in enumerate(source.names):
        if source_id == source.fallback_id:
            continue
        target_id = _resolve(class_name, target)
        if target_id is None:
            unmapped.append(class_name)
        else:
            lut[source_id] = target_id
    return Conversion(source, target, lut, tuple(unmapped))
