"""Frame sizes: parsing ``--size`` and fitting sizes to what encoders accept."""

from __future__ import annotations

import re
from typing import NamedTuple

from chain.errors import ChainError

#: The largest side --size accepts (16K): beyond any camera or H.264 level (6.2 stops at 8192x4320),
#: and one RGB frame of 16384x16384 already takes 768 MiB before any network runs.
MAX_SIDE = 16384


class Size(NamedTuple):
    """Width and height in pixels (PIL's order)."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


_SIZE_PATTERN = re.compile(r"^\s*([0-9]+)\s*[xX×]\s*([0-9]+)\s*$")


def parse_size(text: str | None) -> Size | int | None:
    """``"256x144"`` → Size(256, 144); ``"256"`` → 256 (a short side); None → None."""
    if text is None or text == "":
        return None
    match = _SIZE_PATTERN.match(text)
    if match:
        size = Size(int(match.group(1)), int(match.group(2)))
        if size.width < 2 or size.height < 2:
            raise ChainError(f"--size {text!r} is too small; use at least 2x2")
        return _bounded(size, text)
    if text.strip().isascii() and text.strip().isdigit() and int(text) >= 2:
        if int(text) > MAX_SIDE:
            raise ChainError(f"--size {text.strip()} is too large: at most {MAX_SIDE} pixels a side")
        return int(text)
    raise ChainError(f"--size {text!r} is not WIDTHxHEIGHT (e.g. 256x144) or a short side (e.g. 256)")


def _bounded(size: Size, text: str) -> Size:
    if max(size) > MAX_SIDE:
        raise ChainError(f"--size {text.strip()} is too large: at most {MAX_SIDE} pixels a side "
                         f"(one {size} frame would take {_memory(size)} of memory)")
    return size


def _memory(size: Size) -> str:
    """What one RGB frame of ``size`` takes, in MiB or GiB."""
    mib = size.width * size.height * 3 / 2**20
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def resolve_size(source: Size, wanted: Size | int | None, name: object = "the input") -> Size:
    """The working size for frames of ``source`` size given ``--size`` (``name``: the input, for errors).

    A short side keeps the aspect ratio and rounds the long side to an even number, which
    is what 4:2:0 video needs anyway; an explicit ``WxH`` is taken as asked. Without --size the
    input's own size must fit in `MAX_SIDE` (an encoder refuses more, after the whole run); a
    side of 1 is fine (video outputs repeat the last row or column to make it even).
    """
    if min(source) < 1:
        raise ChainError(f"{name} has no picture size ({source}); it is damaged or not a picture")
    if wanted is None:
        if max(source) > MAX_SIDE:
            raise ChainError(f"{name} is {source}: chain works at most {MAX_SIDE} pixels a side; give --size, "
                             f"e.g. --size {_fit(source)}")
        return source
    if isinstance(wanted, Size):
        return wanted
    scale = wanted / min(source)
    long_side = max(2, 2 * round(max(source) * scale / 2))
    size = Size(wanted, long_side) if source.width < source.height else Size(long_side, wanted)
    if long_side > MAX_SIDE:
        raise ChainError(f"--size {wanted} makes {size} frames from {source}: at most {MAX_SIDE} pixels a side "
                         f"(that frame would take {_memory(size)} of memory); give a smaller short side or WxH, "
                         f"e.g. --size {_fit(source)}")
    return size


def _fit(source: Size) -> Size:
    """``source`` scaled down to fit `MAX_SIDE`, keeping its aspect ratio, with even sides of at least 2."""
    scale = min(1.0, MAX_SIDE / max(source))
    return Size(*(min(MAX_SIDE, max(2, 2 * round(side * scale / 2))) for side in source))


def even_size(size: Size) -> Size:
    """The smallest size ≥ ``size`` with even sides (yuv420p needs them)."""
    return Size(size.width + size.width % 2, size.height + size.height % 2)
