"""The cheap checks of a run, made before torch and the stages are imported: a typo in a path,
a size or a remap rule is reported in a fraction of a second, not after loading networks.

Only `chain.config`, `chain.media` and `chain.labels` are needed here (none imports torch).
"""

from __future__ import annotations

from chain.config import DEFAULT_SEGMENTER, RunConfig, parse_options
from chain.labels import parse_remap
from chain.media import check_preset, open_source
from chain.media.outputs import check_output_paths

__all__ = ["DEFAULT_SEGMENTER", "check_run", "parse_options"]  # the first and last live in chain.config


def check_run(config: RunConfig) -> None:
    """The input opens (with its trim, size and frame rate), the remap rules parse, the preset
    exists, and no output would overwrite the input, another output or a file chain did not write."""
    with open_source(config.source, trim=config.trim, size=config.size, fps=config.fps):
        pass
    parse_remap(config.chain.remap)
    check_preset(config.preset)
    check_output_paths(config.source, config.outputs)
