"""The label space of a model that names its own classes (a transformers ``id2label``).

A checkpoint trained on a dataset chain knows (COCO panoptic, ADE20K, VOC, Cityscapes...)
speaks that built-in space, so its labels convert, remap and colour like any other. One
whose classes match none gets a space made from its own names; conversions to other spaces
then go by name, as between built-in spaces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from chain.errors import ChainError
from chain.labels.space import LabelSpace, normalize_name
from chain.labels.spaces import LABEL_SPACES, pascal_colormap

#: Names a model may give its catch-all class; the first one present becomes the fallback.
CATCH_ALL_NAMES = ("unlabeled", "background", "void", "other", "ignore")
#: Share of a model's classes that must sit at the same id as in a built-in space, spelt as
#: that space or its aliases spell them, for the model to be taken as using that space's order
#: (OneFormer's COCO config, for instance, calls "wall-other-merged" just "wall").
SAME_ORDER_SHARE = 0.9
#: Label maps are saved as 16-bit PNGs: ids up to 65535, one kept for "unlabeled".
MAX_CLASSES = 65535
_CLASS_ID = re.compile(r"^\s*\d{1,9}\s*$")


def class_names(id2label: Any, source: str) -> list[str]:
    """The class names of ids ``0 .. n-1`` of a model's ``id2label`` (as its config.json holds it, string
    keys, or as transformers holds it, int keys); a one-line `ChainError` naming ``source`` when it is
    not an object, a key is not a class id or repeats one, the ids have gaps, or a name is not a
    non-empty string."""
    where = f"{source}: id2label"
    if not isinstance(id2label, Mapping):
        raise ChainError(f"{where} is {type(id2label).__name__}, not an object of class ids to names")
    if not id2label:
        raise ChainError(f"{where} names no classes")
    if len(id2label) > MAX_CLASSES:
        raise ChainError(f"{where} names {len(id2label)} classes, more than the {MAX_CLASSES} chain's labels hold")
    labels: dict[int, str] = {}
    for key, name in id2label.items():
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and _CLASS_ID.match(key))):
            raise ChainError(f"{where} has key {key!r}, not a class id (0, 1, 2...)")
        label_id = int(key)
        if label_id in labels:
            raise ChainError(f"{where} gives class {label_id} twice")
        if not isinstance(name, str) or not name.strip():
            raise ChainError(f"{where} gives class {label_id} the name {name!r}, not a non-empty string")
        labels[label_id] = name.strip()
    if sorted(labels) != list(range(len(labels))):
        gap = next(i for i in range(len(labels) + 1) if i not in labels)
        raise ChainError(f"{where} must name classes 0..N-1 without gaps; it lacks {gap} (ids "
                         f"{', '.join(map(str, sorted(labels)[:8]))}{'...' if len(labels) > 8 else ''})")
    return [labels[i] for i in range(len(labels))]


def _by_name(names: list[str], space: LabelSpace) -> np.ndarray | None:
    ids = [space.find(name) for name in names]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        return None
    return np.array(ids, dtype=np.int64)


def _by_order(names: list[str], space: LabelSpace) -> np.ndarray | None:
    if len(names) not in (len(space), len(space) - 1) or (len(names) < len(space) and space.fallback_id != len(names)):
        return None
    same = sum(space.find(name) == i for i, name in enumerate(names))
    return np.arange(len(names)) if same >= SAME_ORDER_SHARE * len(names) else None


def model_label_space(names: list[str], *, name: str, description: str = "") -> tuple[LabelSpace, np.ndarray]:
    """The space for a model's classes and the ``(len(names),)`` table from class index to space id.

    A built-in space is used when every class name is one of its classes (the smallest such
    space wins: a COCO-panoptic model is not taken for COCO-Stuff), or when the model keeps
    the space's order under its own spellings (`SAME_ORDER_SHARE`). Otherwise a new space
    ``name`` is made of the model's names, plus "unlabeled" as the fallback unless the model
    has a catch-all class of its own.
    """
    spaces = sorted(LABEL_SPACES.values(), key=len)
    for match in (_by_name, _by_order):
        for space in spaces:
            table = match(names, space)
            if table is not None:
                return space, table
    normalized = [normalize_name(n) for n in names]
    fallback = next((n for n in CATCH_ALL_NAMES if n in normalized), None)
    all_names = tuple(names) if fallback else (*names, "unlabeled")
    space = LabelSpace(name=name, names=all_names, palette=pascal_colormap(len(all_names)),
                       fallback=names[normalized.index(fallback)] if fallback else "unlabeled",
                       description=description or f"the classes of {name}")
    return space, np.arange(len(names))
