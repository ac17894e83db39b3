"""The cheap checks of a run, made before torch and the stages are imported: a typo in a path,
a size or a remap rule is reported in a fraction of a second, not after loading networks.

Only `chain.media` and `chain.labels` are needed here (neither imports torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chain.errors import ChainError
from chain.labels import parse_remap
from chain.media import Trim, check_preset, open_source
from chain.media.outputs import Outputs, check_output_paths

# The segmenter a run uses unless told: the one a user has after following the README (imported
# from the shared TF Lite file, offline), light enough for a laptop CPU. For the blog's COCO
# classes use --seg mask2former:coco; --seg deeplab is torchvision's DeepLabV3 (a download).
DEFAULT_SEGMENTER = "deeplab-mnv2:voc"
# The synthesizer a run uses unless told: it needs no weights, and it paints in COCO-Stuff (the
# segmenter's labels converted), so any of COCO's 182 classes can be remapped to (`--remap
# person=bear`), which plain `colorize` (the segmenter's own space: VOC's 21) refused.
DEFAULT_SYNTHESIZER = "colorize:coco-stuff"


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``["size=256", "steps=20"]`` → ``{"size": "256", "steps": "20"}`` (stage options)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ChainError(f"stage option {pair!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def check_run(source: str | Path, outputs: Outputs, *, trim: Trim, size: str | None, fps: float | None,
              remap: Sequence[str], preset: str | None) -> None:
    """The input opens (with its trim, size and frame rate), the remap rules parse, the preset
    exists, and no output would overwrite the input, another output or a file chain did not write."""
    with open_source(source, trim=trim, size=size, fps=fps):
        pass
    parse_remap(remap)
    check_preset(preset)
    check_output_paths(Path(source), outputs)
