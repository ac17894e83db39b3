"""Label spaces: the vocabulary a segmenter speaks and a synthesizer understands.

A label map is an integer array whose values are ids of one `LabelSpace`. Ids are
contiguous, ``0 .. len(space) - 1``; an id's name is ``space.names[id]``. Every space
declares a *fallback* id, where classes with no counterpart land when a map is
converted into it (COCO-Stuff's "unlabeled", VOC's "background", CamVid's "void").
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from chain.errors import ChainError


def normalize_name(name: str) -> str:
    """Lower-case, with '_', '-' and repeated spaces folded to one space."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """A named set of classes with ids, display colours and a fallback class.

    Args:
        name: short identifier, e.g. ``"voc"`` or ``"coco-stuff"``.
        names: class name of each id, index = id.
        palette: ``(len(names), 3)`` uint8 RGB colour of each id.
        fallback: name of the class that unmapped classes become.
        description: one line for ``chain labels`` and ``chain list``.
        aliases: extra names accepted for a class (``{"motorbike": "motorcycle"}``),
            on top of the global synonym table.
        unused: classes that hold an id but that no dataset or model of this space uses
            (COCO-Stuff's 11 unannotated thing ids); conversions never land on them.
    """

    name: str
    names: tuple[str, ...]
    palette: np.ndarray
    fallback: str
    description: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    unused: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        palette = np.asarray(self.palette, dtype=np.uint8)
        if palette.shape != (len(self.names), 3):
            raise ValueError(f"{self.name}: palette shape {palette.shape} != ({len(self.names)}, 3)")
        palette.setflags(write=False)
        object.__setattr__(self, "palette", palette)
        index: dict[str, int] = {}
        for label_id, class_name in enumerate(self.names):
            index.setdefault(normalize_name(class_name), label_id)
        for alias, target in self.aliases.items():
            index.setdefault(normalize_name(alias), index[normalize_name(target)])
        object.__setattr__(self, "_index", index)
        if normalize_name(self.fallback) not in index:
            raise ValueError(f"{self.name}: fallback {self.fallback!r} is not a class")
        unknown = {u for u in self.unused if normalize_name(u) not in index}
        if unknown:
            raise ValueError(f"{self.name}: unused classes {sorted(unknown)} are not classes")

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"LabelSpace({self.name!r}, {len(self)} ids)"

    @property
    def fallback_id(self) -> int:
        return self.id_of(self.fallback)

    @property
    def unused_ids(self) -> frozenset[int]:
        """Ids of the `unused` classes."""
        return frozenset(self.id_of(u) for u in self.unused)

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id."""
        return np.dtype(np.uint8 if len(self) <= 256 else np.uint16)

    def find(self, class_name: str) -> int | None:
        """The id of ``class_name`` (case-, space- and alias-insensitive), or None."""
        return self._index.get(normalize_name(class_name))  # type: ignore[attr-defined]

    def id_of(self, class_name: str) -> int:
        """The id of ``class_name``; a `ChainError` with close matches when unknown."""
        label_id = self.find(class_name)
        if label_id is None:
            raise ChainError(f"unknown class {class_name!r} in label space {self.name!r}" + self._suggest(class_name))
        return label_id

    def _suggest(self, class_name: str) -> str:
        candidates = list(self._index)  # type: ignore[attr-defined]
        close = difflib.get_close_matches(normalize_name(class_name), candidates, n=4, cutoff=0.5)
        if not close:
            return f"; see `chain labels {self.name}`"
        return "; did you mean " + ", ".join(repr(c) for c in close) + f"? (see `chain labels {self.name}`)"

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """Paint a label map ``(..., H, W)`` with this space's palette → ``(..., H, W, 3)`` uint8."""
        return self.palette[np.clip(labels, 0, len(self) - 1)]
