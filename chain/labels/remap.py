"""User label swaps (``--remap person=bear``), applied in the synthesizer's label space.

Rules are applied at once to the original map, not one after another, so
``person=bear,bear=person`` swaps the two classes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chain.errors import ChainError
from chain.labels.space import LabelSpace
from chain.labels.spaces import LABEL_SPACES

#: The source that stands for every class not named as a source in any rule.
WILDCARD = "*"


class UnknownRemapClass(ChainError):
    """A ``--remap`` names a class the synthesizer's space lacks; ``spaces`` are those that have it."""

    def __init__(self, message: str, class_name: str, spaces: list[str]) -> None:
        super().__init__(message)
        self.class_name = class_name
        self.spaces = spaces


def _resolve(space: LabelSpace, name: str) -> int:
    """``space.id_of(name)``, but an unknown name says where remapping happens and which spaces know it."""
    try:
        return space.id_of(name)
    except ChainError as error:
        spaces = [other.name for other in LABEL_SPACES.values() if other.find(name) is not None]
        where = (f"; {name!r} is in {', '.join(spaces)}" if spaces else f"; no label space has {name!r}")
        raise UnknownRemapClass(f"--remap works in the synthesizer's label space, here {space.name!r}: {error}{where}",
                                name, spaces) from None


def parse_remap(rules: Iterable[str]) -> list[tuple[str, str]]:
    """Split rules such as ``"person=bear, car=boat"`` into ``[("person", "bear"), ...]``.

    Empty pieces (a trailing comma) are ignored; anything else not of the form ``SRC=DST``
    raises `ChainError`.
    """
    pairs: list[tuple[str, str]] = []
    for rule in rules:
        for piece in rule.split(","):
            if not piece.strip():
                continue
            src, sep, dst = (part.strip() for part in piece.partition("="))
            if not sep or not src or not dst or "=" in dst:
                raise ChainError(
                    f"bad remap rule {piece.strip()!r}: expected SRC=DST, e.g. person=bear "
                    f"(several separated by commas; *=CLASS for every other class)"
                )
            pairs.append((src, dst))
    return pairs


def remap_table(space: LabelSpace, rules: Iterable[str | tuple[str, str]]) -> np.ndarray:
    """A ``(len(space),)`` look-up table of ``space`` ids for the swaps in ``rules``.

    ``rules`` are strings for `parse_remap` or already parsed ``(src, dst)`` pairs. A source
    named twice takes its last destination; ``*=DST`` sends every class that no rule names
    as a source to ``DST``. Unknown class names raise `ChainError` with close matches.
    """
    if isinstance(rules, str):  # one rule given bare, not a list of them
        rules = [rules]
    pairs: list[tuple[str, str]] = []
    for rule in rules:
        if isinstance(rule, str):
            pairs.extend(parse_remap([rule]))
        else:
            src, dst = rule
            pairs.append((src.strip(), dst.strip()))
    # Resolve every name before building, so a typo fails before any work is done.
    resolved = [(None if src == WILDCARD else _resolve(space, src), _resolve(space, dst))
                for src, dst in pairs]
    lut = np.arange(len(space), dtype=space.dtype)
    wildcards = [dst for src, dst in resolved if src is None]
    if wildcards:
        named = sorted({src for src, _ in resolved if src is not None})
        lut[np.setdiff1d(np.arange(len(space)), named)] = wildcards[-1]
    for src, dst in resolved:
        if src is not None:
            lut[src] = dst
    return lut


def describe_remap(space: LabelSpace, lut: np.ndarray, *, max_listed: int = 4) -> list[str]:
    """Lines such as ``"person → bear"`` for the run summary, one per changed class.

    When more than ``max_listed`` classes share a destination (a ``*=`` rule), they are
    summarised on one line.
    """
    by_destination: dict[int, list[str]] = {}
    for src, dst in enumerate(np.asarray(lut).tolist()):
        if src != dst:
            by_destination.setdefault(dst, []).append(space.names[src])
    lines: list[str] = []
    for dst, sources in by_destination.items():
        target = space.names[dst]
        if len(sources) <= max_listed:
            lines.extend(f"{src} → {target}" for src in sources)
        else:
            shown = ", ".join(sources[:3])
            lines.append(f"{len(sources)} classes ({shown}, …) → {target}")
    return lines


def remap_notes(space: LabelSpace, lut: np.ndarray, *, max_named: int = 2) -> dict[int, str]:
    """For each class that a remap sends other classes to, a legend note: ``{bear: "was person"}``.

    More than ``max_named`` sources (a ``*=`` rule) are counted instead of named.
    """
    sources: dict[int, list[str]] = {}
    for src, dst in enumerate(np.asarray(lut).tolist()):
        if src != dst:
            sources.setdefault(dst, []).append(space.names[src])
    return {dst: "was " + (", ".join(names) if len(names) <= max_named else f"{len(names)} classes")
            for dst, names in sources.items()}
