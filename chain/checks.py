"""The cheap checks of a run, made before torch and the stages are imported: a typo in a path,
a size or a remap rule is reported in a fraction of a second, not after loading networks.

Only `chain.config`, `chain.media` and `chain.labels` are needed here (none imports torch).
"""

from __future__ import annotations

from chain.config import DEFAULT_SEGMENTER, RunConfig, parse_options
from chain.errors import ChainError
from chain.labels import parse_remap
from chain.media import check_preset, open_source
from chain.media.outputs import check_output_paths

#: MPEG-4 Part 2 (the AVI output's codec) codes at most 8191 pixels a side; x264 takes 16384.
MAX_AVI_SIDE = 8191

__all__ = ["DEFAULT_SEGMENTER", "check_run", "parse_options"]  # the first and last live in chain.config


def check_run(config: RunConfig) -> None:
    """The input opens (with its trim, size and frame rate), the remap rules parse, the preset
    exists, and no output would overwrite the input, another output or a file chain did not write."""
    with open_source(config.source, trim=config.trim, size=config.size, fps=config.fps) as source:
        width, height = source.info.width, source.info.height
    parse_remap(config.chain.remap)
    check_preset(config.preset)
    check_output_paths(config.source, config.outputs)
    for name, path in config.outputs.given().items():
        if config.outputs.kind(name) == "video" and path.suffix.lower() == ".avi" and max(width, height) > MAX_AVI_SIDE:
            raise ChainError(f"{path}: AVI's MPEG-4 encoder takes at most {MAX_AVI_SIDE} pixels a side, and the "
                             f"frames are {width}x{height}; write .mp4 or .mkv, or give a smaller --size")
