"""The saved-labels folder: what ``--save-labels DIR`` writes beside its label PNGs and
``--seg labels:DIR`` reads back.

``labels.json`` names the maps' label space, and carries its classes when the space is not
built in (a model's own space, `chain.labels.model_space`), so a later run can read them.
"""

from __future__ import annotations

import json

import numpy as np

from chain.labels.space import LabelSpace
from chain.labels.spaces import LABEL_SPACES, get_label_space

LABELS_META_FILE = "labels.json"


def labels_meta(space: LabelSpace) -> str:
    """``labels.json`` for label maps of ``space``: its name, and its classes when it is not built in.

    A model's own space (`chain.labels.model_space`) is known by no name a later run could look
    up, so its names, colours and fallback travel with the maps.
    """
    meta: dict = {"label_space": space.name}
    if LABEL_SPACES.get(space.name) is not space:
        meta.update(names=list(space.names), palette=space.palette.tolist(), fallback=space.fallback,
                    description=space.description)
    return json.dumps(meta)


def space_from_meta(meta: dict) -> LabelSpace:
    """The label space a ``labels.json`` describes (see `labels_meta`)."""
    if "names" not in meta:
        return get_label_space(meta["label_space"])
    return LabelSpace(name=meta["label_space"], names=tuple(meta["names"]), palette=np.array(meta["palette"]),
                      fallback=meta["fallback"], description=meta.get("description", ""))
